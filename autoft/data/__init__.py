"""The data stage: reading files and other inputs into a validated :class:`TaskData`.

``readers`` reads files, ``sources`` turns any input into tables, ``columns`` finds and checks the
text and label columns, ``task`` builds the splits (labels through the task kind, see
:mod:`autoft.tasks`).
"""

from autoft.data.columns import LABEL_COLUMN_NAMES, PAIR_COLUMN_NAMES, TEXT_COLUMN_NAMES
from autoft.data.readers import SUPPORTED_SUFFIXES, read_table
from autoft.data.task import (
    TEST_SPLIT_NAMES,
    VALIDATION_SPLIT_NAMES,
    Split,
    TaskData,
    load_task_data,
)

__all__ = [
    "LABEL_COLUMN_NAMES",
    "PAIR_COLUMN_NAMES",
    "SUPPORTED_SUFFIXES",
    "TEST_SPLIT_NAMES",
    "TEXT_COLUMN_NAMES",
    "VALIDATION_SPLIT_NAMES",
    "Split",
    "TaskData",
    "load_task_data",
    "read_table",
]
