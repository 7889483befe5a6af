"""msms_shards: read msms-shards output roots for training, and the ``msms`` command.

>>> import msms_shards
>>> ds = msms_shards.open("shards/c1")
>>> ds.splits
['train', 'val', 'test']
>>> for batch in ds["train"].batches(256, shuffle=True, seed=0, epoch=0):
...     batch["mz"].shape, batch["intensity"].shape, batch["num_peaks"].shape
((256, 128), (256, 128), (256,))

``msms_shards.torch.SpectrumDataset`` wraps the same batches as a PyTorch
``IterableDataset``; :mod:`msms_shards.presets` computes model inputs (DreaMS,
MassSpecGym, MS2DeepScore) with each batch.
"""

from . import _native, presets
from ._dataset import Dataset, RowGroup, Split, VerifyResult, open

__version__ = _native.version()

__all__ = ["Dataset", "RowGroup", "Split", "VerifyResult", "open", "presets", "__version__"]
