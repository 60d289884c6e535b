"""What each dataset is: its tasks, class names, metric settings and default sizes.

This is the single place that says how many classes a task has on a dataset; the model, the data
readers, the losses and the metrics all read it from here.
"""

from dataclasses import dataclass, field

from bridgenet_cli.registry import Registry

NYU40_CLASSES = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror",
    "floor mat", "clothes", "ceiling", "books", "refrigerator", "television", "paper", "towel",
    "shower curtain", "box", "whiteboard", "person", "night stand", "toilet", "sink", "lamp",
    "bathtub", "bag", "otherstructure", "otherfurniture", "otherprop",
)  # fmt: skip

VOC21_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip

CITYSCAPES19_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)  # fmt: skip

HUMAN_PARTS_CLASSES = (
    "background", "head", "torso", "upper arm", "lower arm", "upper leg", "lower leg",
)  # fmt: skip

# The procedurally generated scenes of ``bridgenet_cli.data.synthetic``.
SYNTHETIC_CLASSES = (
    "floor", "wall", "ceiling", "box", "sphere", "cylinder", "person", "table", "lamp", "rug",
)  # fmt: skip


@dataclass(frozen=True)
class DatasetInfo:
    """Facts about one dataset that every part of the toolkit agrees on."""

    name: str
    tasks: tuple[str, ...]  # the tasks it has labels for, in the paper's order
    class_names: dict[str, tuple[str, ...]]  # task -> class names (semseg, human_parts)
    edge_tolerance: float  # maxDist of the boundary benchmark, as a fraction of the diagonal
    train_size: tuple[int, int]  # (H, W) the paper trains at
    depth_unit: str = "metres"
    num_train: int | None = None
    num_val: int | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def num_classes(self, task: str) -> int:
        return len(self.class_names[task])


DATASETS: Registry[DatasetInfo] = Registry("dataset")

DATASETS.register(
    "nyud",
    DatasetInfo(
        name="nyud",
        tasks=("semseg", "depth", "normals", "edge"),
        class_names={"semseg": NYU40_CLASSES},
        edge_tolerance=0.011,
        train_size=(448, 576),
        num_train=795,
        num_val=654,
    ),
)
DATASETS.register(
    "pascal",
    DatasetInfo(
        name="pascal",
        tasks=("semseg", "human_parts", "saliency", "normals", "edge"),
        class_names={"semseg": VOC21_CLASSES, "human_parts": HUMAN_PARTS_CLASSES},
        edge_tolerance=0.0075,
        train_size=(512, 512),
        num_train=4998,
        num_val=5105,
    ),
)
DATASETS.register(
    "cityscapes",
    DatasetInfo(
        name="cityscapes",
        tasks=("semseg", "depth"),
        class_names={"semseg": CITYSCAPES19_CLASSES},
        edge_tolerance=0.0075,
        train_size=(384, 768),
        depth_unit="disparity",
        num_train=2975,
        num_val=500,
    ),
)
DATASETS.register(
    "synthetic",
    DatasetInfo(
        name="synthetic",
        tasks=("semseg", "human_parts", "depth", "normals", "saliency", "edge"),
        class_names={"semseg": SYNTHETIC_CLASSES, "human_parts": HUMAN_PARTS_CLASSES},
        edge_tolerance=0.011,
        train_size=(192, 256),
    ),
)
