"""The recipe schema: typed, validated configuration objects (the one config system).

A recipe TOML file maps onto :class:`Recipe`; its tables ``[data]``, ``[model]``, ``[train]`` and
``[eval]`` map onto the dataclasses below. Field comments are the recipe reference that the README
reproduces; each field's type is what ``--set section.key=value`` is parsed into.
"""

from dataclasses import dataclass, field


@dataclass
class SyntheticConfig:
    """The procedurally generated default dataset (``data.dataset = "synthetic"``)."""

    num_train: int = 800  # scenes in the train split
    num_val: int = 200  # scenes in the val split
    height: int = 192  # image height in pixels
    width: int = 256  # image width in pixels
    seed: int = 0  # generator seed; the same seed gives the same scenes


@dataclass
class DataConfig:
    """Which dataset and how it is served. Without ``cache``, a real dataset's cache is
    ``<data dir>/<dataset>.h5`` (``bridgenet prepare-data``); the synthetic one is
    ``<data dir>/synthetic-v<generator version>-<H>x<W>-<train>+<val>-seed<seed>.h5``, made on first
    use."""

    dataset: str = "synthetic"  # synthetic | nyud | pascal | cityscapes
    cache: str | None = None  # prepared HDF5 file; unset: in the data directory (see above)
    tasks: list[str] = field(default_factory=list)  # subset of the dataset's tasks; empty: all
    train_size: list[int] = field(default_factory=list)  # [H, W] crop; empty: dataset default
    augment: bool = True  # the field's training augmentation (scale, crop, flip, colour)
    scale_range: list[float] = field(default_factory=lambda: [0.5, 2.0])  # random scale bounds
    num_workers: int = 2  # DataLoader worker processes
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class ModelConfig:
    backbone: str = "vit-small"  # a registered backbone name, or timm:<model name>
    variant: str = "bridgenet"  # bridgenet | mtl-baseline | stl (stl: exactly one task)
    pretrained: str | None = None  # local weights file (timm state dict or .safetensors)
    bfe: bool = True  # Bridge Feature Extractor (Table 5); off: the bridge is the backbone map
    tpp: bool = True  # Task Pattern Propagation (Table 5)
    refine: str = "tfr"  # tfr | add | concat | transformer (Table 6)
    tfr_size: str = "large"  # base | large | huge: 2, 4 or 6 TFR layers (x3 blocks) per stage
    decoder_width: int = 512  # preliminary decoder / TPP width (authors' release: 512)
    stage_widths: list[int] = field(default_factory=list)  # coarsest first; []: 576,288,144(,72)
    head_width: int = 576  # multi-scale aggregation width before the task heads
    prelim_width: int = 0  # preliminary decoders' hidden width; 0: the backbone's (ResNet-50d: 512)
    backbone_depth: int = 0  # ViT blocks to build; 0: the named size (fewer only for quick tests)
    drop_path_rate: float = 0.15  # stochastic depth reached by the last TFR block of a stage
    backbone_drop_path_rate: float = 0.0  # stochastic depth inside the backbone
    dcnv3_impl: str = "pytorch"  # InternImage only: pytorch | compiled


@dataclass
class TrainConfig:
    max_iters: int = 40000  # optimiser steps (the paper: 40,000)
    batch_size: int = 6  # global batch per step, split across ranks (the paper: 6)
    grad_accum: int = 1  # micro-batches accumulated into one step
    optimizer: str = "adam"  # adam | adamw | sgd
    lr: float = 2e-5  # peak learning rate
    weight_decay: float = 1e-6
    momentum: float = 0.9  # sgd only
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # adam / adamw
    lr_power: float = 0.9  # polynomial decay power, applied per iteration
    warmup_iters: int = 0  # linear warm-up before the decay
    clip_grad: float = 10.0  # max gradient norm; 0 disables clipping
    seed: int = 0
    amp: str = "none"  # none | bf16 | fp16 (fp16 uses loss scaling; CUDA only)
    channels_last: bool = False  # channels-last memory format for convolutions
    sync_bn: bool = False  # SyncBatchNorm under DDP
    deep_supervision: float = 0.5  # weight of intermediate predictions, times the task weight
    loss_weights: dict[str, float] = field(default_factory=dict)  # task -> weight override
    eval_every: int = 1000  # iterations between validations; 0: only at the end
    checkpoint_every: int = 500  # iterations between checkpoints
    log_every: int = 20  # iterations between metric lines in metrics.jsonl
    select_metric: str = "auto"  # auto (Delta_MTL, else first task) or task.metric
    device: str = "auto"  # auto | cpu | cuda


@dataclass
class EvalConfig:
    batch_size: int = 1  # images per forward pass at evaluation
    max_samples: int = 0  # evaluate only the first N validation samples; 0: all
    references: str | None = None  # single-task results (JSON) for Delta_MTL
    edge_benchmark: bool = True  # odsF/oisF/AP boundary benchmark (slower) besides the BCE proxy
    edge_workers: int = 0  # processes for the edge benchmark; 0: all cores


@dataclass
class Recipe:
    name: str = ""  # short name used in run folder names
    description: str = ""  # what this recipe is for
    reproduces: str = ""  # the paper table and row this recipe reproduces, if any
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
