"""The modules create_pretraining_data.py's Apache Beam workers import, as a package for runners
whose workers are other machines: DataflowRunner installs it on each worker from
`--setup_file=./setup.py` (run from the repository root). Nothing else uses it.
"""

import setuptools

setuptools.setup(
    name="bert-pretraining-data-workers",
    version="1.0",
    description="create_pretraining_data.py and the modules it imports, for Beam workers",
    py_modules=["create_pretraining_data", "errors", "file_io", "shared_flags", "tokenization"],
    install_requires=["absl-py==2.5.1", "sentencepiece==0.2.3", "google-crc32c==1.9.0"],
    python_requires=">=3.10",
)
