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


# PASCAL-Part names of person parts -> index in HUMAN_PARTS_CLASSES (the multi-task benchmark's
# grouping: eyes, ears, brows, nose, mouth and hair belong to the head, hands to the lower arms,
# feet to the lower legs, the neck to the torso).
PASCAL_PERSON_PARTS = {
    "head": 1, "leye": 1, "reye": 1, "lear": 1, "rear": 1, "lebrow": 1, "rebrow": 1, "nose": 1,
    "mouth": 1, "hair": 1,
    "torso": 2, "neck": 2,
    "luarm": 3, "ruarm": 3,
    "llarm": 4, "rlarm": 4, "lhand": 4, "rhand": 4,
    "luleg": 5, "ruleg": 5,
    "llleg": 6, "rlleg": 6, "lfoot": 6, "rfoot": 6,
}  # fmt: skip
PASCAL_PERSON_CLASS = 15  # VOC class index of "person" (class_ind in the PASCAL-Part structs)

# PASCAL-Context label ids (LabelMap values, 459-class list) of the classes that also exist in
# NYU's label set, plus "tvmonitor": distilled normals are valid only on these (the published
# loaders intersect the two class-name lists the same way).
PASCAL_CONTEXT_NORMALS_VALID = frozenset((
    3, 4, 6, 9, 10, 11, 13, 15, 17, 18, 22, 23, 29, 30, 33, 34, 36, 37, 38, 39, 41, 43, 46, 49, 50,
    51, 53, 55, 56, 59, 61, 62, 65, 66, 68, 69, 72, 73, 78, 83, 84, 85, 87, 88, 95, 96, 101, 104,
    105, 107, 111, 113, 115, 122, 124, 135, 141, 142, 143, 146, 150, 154, 157, 158, 159, 165, 172,
    174, 181, 183, 184, 191, 193, 195, 197, 199, 202, 213, 215, 216, 219, 220, 223, 225, 228, 230,
    232, 233, 238, 239, 242, 243, 246, 250, 251, 252, 255, 260, 261, 263, 269, 272, 273, 275, 281,
    283, 284, 285, 286, 287, 288, 290, 291, 292, 293, 295, 304, 307, 309, 310, 314, 315, 319, 323,
    329, 330, 331, 336, 342, 345, 349, 350, 351, 352, 355, 357, 368, 370, 371, 374, 379, 380, 383,
    384, 397, 401, 403, 405, 407, 408, 411, 412, 413, 414, 417, 419, 421, 423, 427, 429, 430, 432,
    440, 441, 442, 443, 444, 446, 454, 457,
))  # fmt: skip

# Cityscapes label id (0..33, the values of *_gtFine_labelIds.png) -> train id (0..18, 255 =
# ignore): the facts of the official table in cityscapesscripts.helpers.labels, for when that
# package is not installed.
CITYSCAPES_ID_TO_TRAIN_ID = (
    255, 255, 255, 255, 255, 255, 255, 0, 1, 255, 255, 2, 3, 4, 255, 255, 255, 5, 255, 6, 7, 8, 9,
    10, 11, 12, 13, 14, 15, 255, 255, 16, 17, 18,
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
