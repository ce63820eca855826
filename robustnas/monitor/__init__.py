"""Run monitoring: TensorBoard logging, terminal progress bars and running averages.

Everything here is cheap to import; TensorBoard and tqdm are imported only when a logger or
a bar is actually created, and both can be switched off (DDP ranks other than 0, ``--quiet``)
so that they write nothing at all.
"""

from robustnas.monitor.meters import AverageMeter, EpochMeter
from robustnas.monitor.progress import Progress, progress
from robustnas.monitor.run_logger import RunLogger

__all__ = ["AverageMeter", "EpochMeter", "Progress", "RunLogger", "progress"]
