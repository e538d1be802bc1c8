"""The study stage: where studies live (``storage``), what each trial record holds
(``records``), what a study stores about itself (``info``) and where it stands (``status``).
Nothing here imports torch or the training code."""

from autoft.study.records import (
    STATUSES,
    STRATEGY_COLUMNS,
    Attr,
    StudyAttr,
    TrialRecord,
    strategy_key,
    trial_records,
    write_outcome,
)
from autoft.study.status import (
    BACKBONES_DIR,
    BACKBONES_FILE,
    STUDY_NAME,
    backbone_entry_dir,
    chosen_backbone_dir,
    load_study,
    read_backbones_state,
    screening_backbones,
    study_runs,
    study_status,
)
from autoft.study.storage import (
    GRACE_SECONDS,
    HEARTBEAT_SECONDS,
    STUDY_DB,
    STUDY_JOURNAL,
    Heartbeat,
    describe_storage,
    fail_stale_trials,
    hide_password,
    lock_folder,
    open_storage,
)

__all__ = [
    "BACKBONES_DIR",
    "BACKBONES_FILE",
    "GRACE_SECONDS",
    "HEARTBEAT_SECONDS",
    "STATUSES",
    "STRATEGY_COLUMNS",
    "STUDY_DB",
    "STUDY_JOURNAL",
    "STUDY_NAME",
    "backbone_entry_dir",
    "chosen_backbone_dir",
    "Attr",
    "Heartbeat",
    "StudyAttr",
    "TrialRecord",
    "describe_storage",
    "fail_stale_trials",
    "hide_password",
    "load_study",
    "read_backbones_state",
    "screening_backbones",
    "lock_folder",
    "open_storage",
    "strategy_key",
    "study_runs",
    "study_status",
    "trial_records",
    "write_outcome",
]
