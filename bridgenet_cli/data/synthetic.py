"""Procedurally generated indoor scenes with exact ground truth for all six tasks.

Each scene is ray-cast with numpy: a room (floor, walls, ceiling) holding random boxes, spheres,
cylinders, a table, a floor lamp, a rug and an articulated human-like figure built from
primitives. Every object draws its colours and its procedural texture from the same distribution,
so colour alone does not give the class; shape, position, context and shading do. A random point
light shades the scene and the camera pose and field of view vary from scene to scene.

Ground truth is exact and mutually consistent:

- ``depth``: z-depth in metres (distance along the optical axis), every pixel valid.
- ``normals``: unit normals in the camera frame, x right, y up, z towards the viewer (the
  convention of the NYUD normal maps: surfaces seen by the camera have ``n_z > 0``).
- ``semseg``: :data:`~bridgenet_cli.data.info.SYNTHETIC_CLASSES`; ``human_parts``: the figure's
  head, torso, upper and lower arms and legs (:data:`~bridgenet_cli.data.info.HUMAN_PARTS_CLASSES`),
  0 elsewhere.
- ``edge``: one pixel wide, on the nearer side of every semantic boundary and every depth
  discontinuity between two surfaces.
- ``saliency``: the figure and the objects that cover at least :data:`SALIENT_AREA` of the image.

A scene depends only on ``(seed, split, index)``, so generation is deterministic whatever the
number of worker processes. :data:`GENERATOR_VERSION` changes whenever the scenes change.
"""

import logging
from dataclasses import dataclass, field

import numpy as np

from bridgenet_cli.data.info import HUMAN_PARTS_CLASSES, SYNTHETIC_CLASSES

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 2  # bump whenever the scenes change (it names the cache files)
SPLIT_CODES = {"train": 1, "val": 2}
SALIENT_AREA = 0.04  # fraction of the image an object must cover to count as salient
DEPTH_JUMP = 0.04  # relative depth change between two surfaces that counts as a discontinuity

# Ranges of the scene and camera parameters (metres, radians, degrees for the field of view).
# They vary enough that depth must be read from the image (perspective, the horizon, the
# figure's size), and little enough that a small model learns it within minutes.
ROOM_WIDTH = (4.5, 6.5)
ROOM_DEPTH = (5.5, 7.0)
ROOM_HEIGHT = (2.6, 3.0)
CAMERA_HEIGHT = (1.35, 1.65)  # a hand-held camera, as in NYUD
CAMERA_YAW = 0.25  # either way
CAMERA_PITCH = (0.15, 0.3)  # downwards
CAMERA_ROLL = 0.03  # either way
FIELD_OF_VIEW = (58.0, 62.0)  # horizontal, degrees: nearly one camera, as in a real dataset
WALL_INSET = 0.4  # free floor starts this far from the walls
WALL_GAP = 0.5  # furniture stands at most this far from its wall

CLASS = {name: index for index, name in enumerate(SYNTHETIC_CLASSES)}
PART = {name: index for index, name in enumerate(HUMAN_PARTS_CLASSES)}

BOX, SPHERE, CYLINDER = 0, 1, 2
_EPS = 1e-4
_GAMMA_TABLE = (np.linspace(0.0, 1.0, 4096) ** (1.0 / 2.2) * 255.0).astype(np.float32)


@dataclass
class Material:
    """A procedural texture: two colours mixed by a pattern of the object-frame position."""

    kind: str  # plain | checker | stripes | noise | grain
    colour_a: np.ndarray  # (3,) linear RGB in [0, 1]
    colour_b: np.ndarray  # (3,)
    frequency: float  # pattern cycles per metre
    directions: np.ndarray  # (3, 3) unit vectors, one per pattern component
    phases: np.ndarray  # (3,)


@dataclass
class Primitive:
    """A unit shape placed by a rotation, per-axis half extents and a centre.

    The unit shapes are the cube ``[-1, 1]^3``, the unit sphere and the cylinder
    ``x^2 + z^2 <= 1, |y| <= 1`` (its axis is the local y axis).
    """

    shape: int
    rotation: np.ndarray  # (3, 3) local -> world, columns are the local axes
    scale: np.ndarray  # (3,) half extents along the local axes, metres
    center: np.ndarray  # (3,) world position, metres
    semantic: int
    material: Material
    group: int  # object instance: the parts of a table or of the figure share one
    part: int = 0  # human part, 0 for everything but the figure
    inside: bool = False  # the room: rays start inside it and hit its far side


@dataclass
class Camera:
    position: np.ndarray  # (3,) world
    rotation: np.ndarray  # (3, 3) camera -> world; columns: right, up, backwards
    fx: float
    fy: float
    cx: float
    cy: float


@dataclass
class Scene:
    camera: Camera
    primitives: list[Primitive] = field(default_factory=list)
    room_materials: list[Material] = field(default_factory=list)  # floor, walls, ceiling
    light_position: np.ndarray = field(default_factory=lambda: np.zeros(3))
    light_colour: np.ndarray = field(default_factory=lambda: np.ones(3))
    light_power: float = 1.0
    ambient: float = 0.3
    exposure: float = 1.0
    noise: float = 0.01


# ----------------------------------------------------------------------------------------------
# Scene construction
# ----------------------------------------------------------------------------------------------


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator of one scene; independent of how scenes are spread over workers."""
    return np.random.default_rng(np.random.SeedSequence([seed, SPLIT_CODES[split], index]))


def _rotation_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rotation_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rotation_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _frame_from_axis(axis: np.ndarray) -> np.ndarray:
    """A rotation whose second column (the local y axis) is ``axis``."""
    y = axis / np.linalg.norm(axis)
    helper = np.array([1.0, 0.0, 0.0]) if abs(y[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    x = np.cross(helper, y)
    x /= np.linalg.norm(x)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=1)


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    """A colour from one wide distribution shared by every class (hue, saturation, value)."""
    hue = rng.uniform(0.0, 1.0)
    saturation = rng.uniform(0.05, 0.85)
    value = rng.uniform(0.25, 0.95)
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6.0) % 6.0
    rgb = value - value * saturation * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return rgb**2.2  # to linear light


def _random_material(rng: np.random.Generator) -> Material:
    kind = str(rng.choice(["plain", "checker", "stripes", "noise", "grain"]))
    colour_a = _random_colour(rng)
    colour_b = colour_a * rng.uniform(0.3, 0.8) if rng.random() < 0.5 else _random_colour(rng)
    directions = rng.normal(size=(3, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return Material(
        kind=kind,
        colour_a=colour_a,
        colour_b=colour_b,
        frequency=float(rng.uniform(1.5, 7.0)),
        directions=directions,
        phases=rng.uniform(0.0, 2.0 * np.pi, size=3),
    )


class _Builder:
    """Adds primitives to a scene, giving each object its own group id and material."""

    def __init__(self, scene: Scene, rng: np.random.Generator):
        self.scene = scene
        self.rng = rng
        self.next_group = 0

    def new_group(self) -> int:
        self.next_group += 1
        return self.next_group - 1

    def add(
        self,
        shape: int,
        center,
        scale,
        semantic: int,
        material: Material,
        group: int,
        rotation: np.ndarray | None = None,
        part: int = 0,
        inside: bool = False,
    ) -> None:
        self.scene.primitives.append(
            Primitive(
                shape=shape,
                rotation=np.eye(3) if rotation is None else rotation,
                scale=np.asarray(scale, dtype=np.float64),
                center=np.asarray(center, dtype=np.float64),
                semantic=semantic,
                material=material,
                group=group,
                part=part,
                inside=inside,
            )
        )

    def add_limb(self, start, end, radius, semantic, material, group, part) -> None:
        """A cylinder from ``start`` to ``end``."""
        start, end = np.asarray(start), np.asarray(end)
        axis = end - start
        length = float(np.linalg.norm(axis))
        self.add(
            CYLINDER,
            (start + end) / 2.0,
            (radius, length / 2.0, radius),
            semantic,
            material,
            group,
            rotation=_frame_from_axis(axis),
            part=part,
        )


def _place_footprint(
    rng: np.random.Generator,
    taken: list[tuple[float, float, float]],
    radius: float,
    x_range: tuple[float, float],
    z_range: tuple[float, float],
    near_wall: bool = False,
    tries: int = 20,
) -> tuple[float, float] | None:
    """A floor position at least ``radius`` away from the footprints already taken, or None.

    ``x_range`` and ``z_range`` are the free floor, :data:`WALL_INSET` inside the side and back
    walls; ``near_wall`` puts the footprint within :data:`WALL_GAP` of one of those walls, as
    furniture stands.
    """
    for _ in range(tries):
        x = rng.uniform(*x_range)
        z = rng.uniform(*z_range)
        if near_wall:
            gap = radius + rng.uniform(0.02, WALL_GAP) - WALL_INSET
            side = rng.choice(3, p=(0.5, 0.25, 0.25))  # back, left, right
            if side == 0:
                z = z_range[0] + gap
            else:
                x = x_range[0] + gap if side == 1 else x_range[1] - gap
        if all((x - tx) ** 2 + (z - tz) ** 2 > (radius + tr) ** 2 for tx, tz, tr in taken):
            taken.append((x, z, radius))
            return x, z
    return None


def _add_figure(builder: _Builder, origin: np.ndarray, yaw: float, height: float) -> None:
    """An articulated figure standing on the floor at ``origin`` (x, z), facing ``yaw``."""
    rng = builder.rng
    group = builder.new_group()
    skin, shirt, trousers = (_random_material(rng) for _ in range(3))
    s = height / 1.75
    person = CLASS["person"]

    # Joint positions in the figure's frame (y up, facing +z), before posing the limbs.
    hip_y = 0.93 * s
    shoulder_y = 1.45 * s
    torso_center = np.array([0.0, (hip_y + shoulder_y) / 2.0, 0.0])
    points = []
    limbs = []  # (start, end, radius, material, part)

    for side in (-1.0, 1.0):
        shoulder = np.array([side * 0.2 * s, shoulder_y, 0.0])
        swing = rng.uniform(-0.7, 1.6)  # forward/backward rotation at the shoulder
        spread = rng.uniform(0.05, 1.2)  # sideways lift
        bend = rng.uniform(0.0, 1.9)  # elbow
        arm = _rotation_x(-swing) @ _rotation_z(side * spread) @ np.array([0.0, -1.0, 0.0])
        elbow = shoulder + arm * 0.3 * s
        fore = _rotation_x(-swing - bend) @ _rotation_z(side * spread) @ np.array([0.0, -1.0, 0.0])
        wrist = elbow + fore * 0.27 * s
        limbs.append((shoulder, elbow, 0.05 * s, shirt, PART["upper arm"]))
        limbs.append((elbow, wrist, 0.04 * s, skin, PART["lower arm"]))
        points.append((shoulder, 0.055 * s, shirt, PART["upper arm"]))
        points.append((elbow, 0.045 * s, shirt, PART["upper arm"]))
        points.append((wrist, 0.045 * s, skin, PART["lower arm"]))

        hip = np.array([side * 0.095 * s, hip_y, 0.0])
        lift = rng.uniform(-0.45, 0.6)  # hip flexion
        knee_bend = rng.uniform(0.0, 1.1)
        thigh = _rotation_x(-lift) @ _rotation_z(side * rng.uniform(0.0, 0.25))
        thigh_dir = thigh @ np.array([0.0, -1.0, 0.0])
        knee = hip + thigh_dir * 0.45 * s
        shin_dir = _rotation_x(-lift + knee_bend) @ np.array([0.0, -1.0, 0.0])
        ankle = knee + shin_dir * 0.44 * s
        limbs.append((hip, knee, 0.075 * s, trousers, PART["upper leg"]))
        limbs.append((knee, ankle, 0.055 * s, trousers, PART["lower leg"]))
        points.append((hip, 0.08 * s, trousers, PART["upper leg"]))
        points.append((knee, 0.06 * s, trousers, PART["upper leg"]))
        points.append((ankle + np.array([0.0, 0.0, 0.04 * s]), 0.06 * s, skin, PART["lower leg"]))

    # Lift the posed figure so that its lowest point touches the floor.
    lowest = min(min(p[1] - r for p, r, _, _ in points), torso_center[1] - 0.3 * s)
    lift_y = -lowest
    place = _rotation_y(yaw)
    offset = np.array([origin[0], lift_y, origin[1]])

    def world(p: np.ndarray) -> np.ndarray:
        return place @ p + offset

    builder.add(
        CYLINDER,
        world(torso_center),
        (0.17 * s, (shoulder_y - hip_y) / 2.0 + 0.03 * s, 0.1 * s),
        person,
        shirt,
        group,
        rotation=place,
        part=PART["torso"],
    )
    head = np.array([0.0, shoulder_y + 0.19 * s, 0.01 * s])
    builder.add(SPHERE, world(head), (0.105 * s,) * 3, person, skin, group, part=PART["head"])
    neck_end = np.array([0.0, shoulder_y + 0.1 * s, 0.0])
    builder.add_limb(
        world(np.array([0.0, shoulder_y - 0.02 * s, 0.0])),
        world(neck_end),
        0.045 * s,
        person,
        skin,
        group,
        PART["torso"],
    )
    for start, end, radius, material, part in limbs:
        builder.add_limb(world(start), world(end), radius, person, material, group, part)
    for center, radius, material, part in points:
        builder.add(SPHERE, world(center), (radius,) * 3, person, material, group, part=part)


def build_scene(rng: np.random.Generator, height: int, width: int) -> Scene:
    """Draw a random room, its furniture, a figure, a light and a camera."""
    room_w = rng.uniform(*ROOM_WIDTH)
    room_d = rng.uniform(*ROOM_DEPTH)
    room_h = rng.uniform(*ROOM_HEIGHT)

    # The camera stands near the z = 0 wall and looks into the room (towards -z).
    cam_pos = np.array(
        [rng.uniform(-0.2, 0.2) * room_w, rng.uniform(*CAMERA_HEIGHT), -rng.uniform(0.3, 0.7)]
    )
    yaw = rng.uniform(-CAMERA_YAW, CAMERA_YAW)
    pitch = -rng.uniform(*CAMERA_PITCH)
    roll = rng.uniform(-CAMERA_ROLL, CAMERA_ROLL)
    rotation = _rotation_y(yaw) @ _rotation_x(pitch) @ _rotation_z(roll)
    fov = np.radians(rng.uniform(*FIELD_OF_VIEW))
    fx = (width / 2.0) / np.tan(fov / 2.0)
    camera = Camera(cam_pos, rotation, fx, fx, width / 2.0, height / 2.0)

    scene = Scene(camera=camera)
    builder = _Builder(scene, rng)

    # The room: one box seen from inside; its faces give floor, walls and ceiling.
    room_group = builder.new_group()
    builder.add(
        BOX,
        (0.0, room_h / 2.0, -room_d / 2.0),
        (room_w / 2.0, room_h / 2.0, room_d / 2.0),
        CLASS["wall"],
        _random_material(rng),
        room_group,
        inside=True,
    )
    scene.room_materials = [_random_material(rng) for _ in range(3)]

    x_range = (-room_w / 2.0 + 0.4, room_w / 2.0 - 0.4)
    z_range = (-room_d + 0.4, cam_pos[2] - 1.2)
    taken: list[tuple[float, float, float]] = [(cam_pos[0], cam_pos[2], 0.6)]

    # The figure, in front of the camera and inside the horizontal field of view.
    distance = rng.uniform(1.8, min(4.5, room_d - 1.2))
    bearing = yaw + rng.uniform(-0.6, 0.6) * fov / 2.0
    fig_x = np.clip(cam_pos[0] - np.sin(bearing) * distance, *x_range)
    fig_z = np.clip(cam_pos[2] - np.cos(bearing) * distance, z_range[0], z_range[1])
    taken.append((fig_x, fig_z, 0.45))
    _add_figure(
        builder, np.array([fig_x, fig_z]), rng.uniform(-np.pi, np.pi), rng.uniform(1.5, 1.9)
    )

    if rng.random() < 0.6:  # a rug under everything else
        spot = _place_footprint(rng, [], 0.1, x_range, z_range)
        size = rng.uniform(0.5, 1.4, size=2)
        builder.add(
            BOX,
            (spot[0], 0.006, spot[1]),
            (size[0], 0.006, size[1]),
            CLASS["rug"],
            _random_material(rng),
            builder.new_group(),
            rotation=_rotation_y(rng.uniform(0, np.pi)),
        )

    if rng.random() < 0.6:
        _add_table(builder, taken, x_range, z_range)
    if rng.random() < 0.5:
        _add_lamp(builder, taken, x_range, z_range)

    for _ in range(rng.integers(1, 4)):
        half = rng.uniform(0.15, 0.6, size=3)
        radius = float(np.hypot(half[0], half[2]))
        spot = _place_footprint(rng, taken, radius, x_range, z_range, near_wall=True)
        if spot is not None:
            builder.add(
                BOX,
                (spot[0], half[1], spot[1]),
                half,
                CLASS["box"],
                _random_material(rng),
                builder.new_group(),
                rotation=_rotation_y(rng.uniform(0, np.pi)),
            )
    for _ in range(rng.integers(0, 3)):
        radius = rng.uniform(0.15, 0.45)
        spot = _place_footprint(rng, taken, radius, x_range, z_range, rng.random() < 0.5)
        if spot is not None:
            center = (spot[0], radius, spot[1])
            builder.add(
                SPHERE, center, (radius,) * 3, CLASS["sphere"], _random_material(rng),
                builder.new_group(),
            )  # fmt: skip
    for _ in range(rng.integers(0, 3)):
        radius = rng.uniform(0.12, 0.4)
        half_h = rng.uniform(0.2, 0.8)
        spot = _place_footprint(rng, taken, radius, x_range, z_range, near_wall=True)
        if spot is not None:
            builder.add(
                CYLINDER,
                (spot[0], half_h, spot[1]),
                (radius, half_h, radius),
                CLASS["cylinder"],
                _random_material(rng),
                builder.new_group(),
            )

    scene.light_position = np.array(
        [rng.uniform(*x_range), room_h - rng.uniform(0.2, 0.6), rng.uniform(-room_d + 0.5, -0.5)]
    )
    scene.light_colour = 1.0 + rng.uniform(-0.15, 0.15, size=3)
    scene.light_power = float(rng.uniform(4.0, 14.0))
    scene.ambient = float(rng.uniform(0.12, 0.4))
    scene.exposure = float(rng.uniform(0.7, 1.3))
    scene.noise = float(rng.uniform(0.005, 0.025))
    return scene


def _add_table(builder: _Builder, taken, x_range, z_range) -> None:
    rng = builder.rng
    half_w, half_d = rng.uniform(0.4, 0.8), rng.uniform(0.3, 0.5)
    radius = float(np.hypot(half_w, half_d))
    spot = _place_footprint(rng, taken, radius, x_range, z_range, rng.random() < 0.7)
    if spot is None:
        return
    group = builder.new_group()
    material = _random_material(rng)
    top_h = rng.uniform(0.68, 0.8)
    turn = _rotation_y(rng.uniform(0, np.pi))
    center = np.array([spot[0], top_h - 0.025, spot[1]])
    builder.add(BOX, center, (half_w, 0.025, half_d), CLASS["table"], material, group, turn)
    for sx, sz in ((-1, -1), (-1, 1), (1, -1), (1, 1)):
        corner = turn @ np.array([sx * (half_w - 0.06), 0.0, sz * (half_d - 0.06)])
        leg_center = np.array([spot[0] + corner[0], (top_h - 0.05) / 2.0, spot[1] + corner[2]])
        builder.add(
            CYLINDER, leg_center, (0.03, (top_h - 0.05) / 2.0, 0.03), CLASS["table"], material,
            group,
        )  # fmt: skip
    if rng.random() < 0.5:  # something on the table
        radius = rng.uniform(0.08, 0.2)
        builder.add(
            SPHERE, (spot[0], top_h + radius, spot[1]), (radius,) * 3, CLASS["sphere"],
            _random_material(rng), builder.new_group(),
        )  # fmt: skip


def _add_lamp(builder: _Builder, taken, x_range, z_range) -> None:
    rng = builder.rng
    spot = _place_footprint(rng, taken, 0.3, x_range, z_range, near_wall=True)
    if spot is None:
        return
    group = builder.new_group()
    material = _random_material(rng)
    pole_h = rng.uniform(1.2, 1.7)
    lamp = CLASS["lamp"]
    builder.add(CYLINDER, (spot[0], 0.02, spot[1]), (0.16, 0.02, 0.16), lamp, material, group)
    builder.add(
        CYLINDER, (spot[0], pole_h / 2.0, spot[1]), (0.025, pole_h / 2.0, 0.025), lamp, material,
        group,
    )  # fmt: skip
    shade = _random_material(rng)
    if rng.random() < 0.5:
        builder.add(CYLINDER, (spot[0], pole_h, spot[1]), (0.2, 0.14, 0.2), lamp, shade, group)
    else:
        builder.add(SPHERE, (spot[0], pole_h, spot[1]), (0.18,) * 3, lamp, shade, group)


# ----------------------------------------------------------------------------------------------
# Ray casting
# ----------------------------------------------------------------------------------------------


def _screen_rect(prim: Primitive, camera: Camera, height: int, width: int):
    """Rows and columns that can see ``prim`` (from its bounding sphere), or None if none can."""
    if prim.inside:
        return slice(0, height), slice(0, width)
    radius = float(np.linalg.norm(prim.scale))
    local = camera.rotation.T @ (prim.center - camera.position)
    depth = -local[2]
    if depth + radius <= _EPS:
        return None
    if depth - radius <= 0.05:
        return slice(0, height), slice(0, width)
    near, far = depth - radius, depth + radius
    xs = [(local[0] + sx * radius) / d for sx in (-1, 1) for d in (near, far)]
    ys = [(local[1] + sy * radius) / d for sy in (-1, 1) for d in (near, far)]
    u0 = int(np.floor(camera.cx + camera.fx * min(xs)))
    u1 = int(np.ceil(camera.cx + camera.fx * max(xs))) + 1
    v0 = int(np.floor(camera.cy - camera.fy * max(ys)))
    v1 = int(np.ceil(camera.cy - camera.fy * min(ys))) + 1
    u0, u1 = max(u0, 0), min(u1, width)
    v0, v1 = max(v0, 0), min(v1, height)
    if u0 >= u1 or v0 >= v1:
        return None
    return slice(v0, v1), slice(u0, u1)


def _intersect(prim: Primitive, origin: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Ray parameter of the first hit (inf where missed) for rays ``origin + t * directions``.

    ``directions`` is ``(3, N)`` in world space (planar, so every operation below runs over
    contiguous rows); ``t`` is in the units of the directions.
    """
    o = (prim.rotation.T @ (origin - prim.center)) / prim.scale  # (3,) in unit-shape space
    d = (prim.rotation.T @ directions) / prim.scale[:, None]  # (3, N)
    dx, dy, dz = d
    inf = np.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        if prim.shape == SPHERE:
            a = dx * dx + dy * dy + dz * dz
            b = o[0] * dx + o[1] * dy + o[2] * dz
            disc = b * b - a * (o @ o - 1.0)
            t = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
            return np.where((disc >= 0) & (t > _EPS), t, inf)

        if prim.shape == BOX:
            t1 = (-1.0 - o[:, None]) / d
            t2 = (1.0 - o[:, None]) / d
            near, far = np.fmin(t1, t2), np.fmax(t1, t2)
            t_near = np.fmax(np.fmax(near[0], near[1]), near[2])
            t_far = np.fmin(np.fmin(far[0], far[1]), far[2])
            if prim.inside:
                return np.where(t_far > _EPS, t_far, inf)
            return np.where((t_near <= t_far) & (t_near > _EPS), t_near, inf)

        # Cylinder: the side x^2 + z^2 = 1 between the caps, and the caps y = +-1.
        a = dx * dx + dz * dz
        b = o[0] * dx + o[2] * dz
        disc = b * b - a * (o[0] ** 2 + o[2] ** 2 - 1.0)
        t_side = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
        y_side = o[1] + t_side * dy
        t_side = np.where((disc >= 0) & (t_side > _EPS) & (np.abs(y_side) <= 1.0), t_side, inf)
        cap = 1.0 if o[1] > 0 else -1.0
        t_cap = (cap - o[1]) / dy
        x_cap = o[0] + t_cap * dx
        z_cap = o[2] + t_cap * dz
        on_cap = (t_cap > _EPS) & (x_cap * x_cap + z_cap * z_cap <= 1.0)
        return np.fmin(t_side, np.where(on_cap, t_cap, inf))


def _local_normals(prim: Primitive, local: np.ndarray) -> np.ndarray:
    """Unit-shape normals ``(3, N)`` at unit-shape hit points ``local`` ``(3, N)``."""
    if prim.shape == SPHERE:
        return local
    normals = np.zeros_like(local)
    if prim.shape == BOX:
        magnitude = np.abs(local)
        axis = magnitude.argmax(axis=0)
        columns = np.arange(local.shape[1])
        sign = np.sign(local[axis, columns])
        normals[axis, columns] = -sign if prim.inside else sign
        return normals
    radial = local[0] * local[0] + local[2] * local[2]
    on_cap = np.abs(local[1]) > radial
    normals[0] = np.where(on_cap, 0.0, local[0])
    normals[2] = np.where(on_cap, 0.0, local[2])
    normals[1] = np.where(on_cap, np.sign(local[1]), 0.0)
    return normals


def _pattern(material: Material, q: np.ndarray) -> np.ndarray:
    """Mixing weight ``(N,)`` in [0, 1] of the two colours at object-frame points ``q`` (3, N)."""
    f = material.frequency
    if material.kind == "plain":
        return np.zeros(q.shape[1])
    if material.kind == "checker":
        cells = np.floor(q[0] * f) + np.floor(q[1] * f) + np.floor(q[2] * f)
        return np.mod(cells, 2.0)
    phase = material.directions @ q  # (3, N): one wave per direction
    waves = np.sin(2.0 * np.pi * f * phase + material.phases[:, None])
    if material.kind == "stripes":
        return np.clip(waves[0] * 3.0 + 0.5, 0.0, 1.0)
    if material.kind == "noise":
        return 0.5 + (waves[0] + waves[1] + waves[2]) * 0.2
    # grain: stripes bent by a slower wave, like wood
    bent = np.sin(2.0 * np.pi * 2.5 * f * phase[0] + 2.0 * waves[1])
    return 0.5 + 0.5 * bent


def _mix(material: Material, weight: np.ndarray) -> np.ndarray:
    """Colours ``(3, N)`` between the material's two colours."""
    a, b = material.colour_a[:, None], material.colour_b[:, None]
    return a + (b - a) * weight[None, :]


def render_scene(scene: Scene, height: int, width: int) -> dict[str, np.ndarray]:
    """Ray-cast ``scene`` into a record (see ``bridgenet_cli.data.records``)."""
    cam = scene.camera
    H, W = height, width

    # Camera rays with the z-depth as ray parameter: d_cam = (x, y, -1), so t is the depth.
    u = (np.arange(W) + 0.5 - cam.cx) / cam.fx
    v = -(np.arange(H) + 0.5 - cam.cy) / cam.fy
    R = cam.rotation
    rays = np.empty((3, H, W))  # world directions, planar
    for axis in range(3):
        rays[axis] = R[axis, 0] * u[None, :] + R[axis, 1] * v[:, None] - R[axis, 2]

    # Nearest hit per pixel; each primitive only tests the pixels its bounding sphere covers.
    depth = np.full((H, W), np.inf)
    hit = np.full((H, W), -1, dtype=np.int32)
    for index, prim in enumerate(scene.primitives):
        rect = _screen_rect(prim, cam, H, W)
        if rect is None:
            continue
        rows, cols = rect
        sub = rays[:, rows, cols]
        h, w = sub.shape[1:]
        t = _intersect(prim, cam.position, sub.reshape(3, -1)).reshape(h, w)
        closer = t < depth[rows, cols]
        depth[rows, cols] = np.where(closer, t, depth[rows, cols])
        hit[rows, cols] = np.where(closer, index, hit[rows, cols])

    # Surface attributes, primitive by primitive, over the flat pixel indices each one won.
    flat_hit = hit.ravel()
    order = np.argsort(flat_hit, kind="stable")
    bounds = np.searchsorted(flat_hit[order], np.arange(len(scene.primitives) + 1))
    flat_rays = rays.reshape(3, -1)
    flat_depth = depth.ravel()
    points = cam.position[:, None] + flat_depth[None, :] * flat_rays  # (3, HW) world
    normals_world = np.zeros((3, H * W))
    albedo = np.zeros((3, H * W))
    semseg = np.zeros(H * W, dtype=np.uint8)
    parts = np.zeros(H * W, dtype=np.uint8)
    group = np.zeros(H * W, dtype=np.int32)
    for index, prim in enumerate(scene.primitives):
        pixels = order[bounds[index] : bounds[index + 1]]
        if len(pixels) == 0:
            continue
        world = points[:, pixels]
        local = (prim.rotation.T @ (world - prim.center[:, None])) / prim.scale[:, None]
        normal = prim.rotation @ (_local_normals(prim, local) / prim.scale[:, None])
        normal /= np.sqrt((normal * normal).sum(axis=0))

        if prim.inside:  # the room: floor, ceiling and walls by the face hit
            axis = np.abs(local).argmax(axis=0)
            down = (axis == 1) & (local[1] < 0)
            up = (axis == 1) & (local[1] > 0)
            labels = np.full(len(pixels), CLASS["wall"], dtype=np.uint8)
            labels[down], labels[up] = CLASS["floor"], CLASS["ceiling"]
            colour = np.empty((3, len(pixels)))
            for chosen, material in zip(
                (down, ~(down | up), up), scene.room_materials, strict=True
            ):
                if chosen.any():
                    colour[:, chosen] = _mix(material, _pattern(material, world[:, chosen]))
        else:
            labels = prim.semantic
            colour = _mix(prim.material, _pattern(prim.material, local * prim.scale[:, None]))

        normals_world[:, pixels] = normal
        albedo[:, pixels] = colour
        semseg[pixels] = labels
        parts[pixels] = prim.part
        group[pixels] = prim.group

    # Shading (float32): ambient, brighter on upward faces, plus a point light with fall-off.
    # TODO(synthetic-shadows): no cast shadows; a shadow ray per pixel would double the cost.
    to_light = (scene.light_position[:, None] - points).astype(np.float32)
    normals32 = normals_world.astype(np.float32)
    distance = np.sqrt(to_light[0] ** 2 + to_light[1] ** 2 + to_light[2] ** 2)
    facing = normals32[0] * to_light[0] + normals32[1] * to_light[1] + normals32[2] * to_light[2]
    diffuse = np.maximum(facing / distance, 0.0) * np.float32(scene.light_power)
    diffuse /= 1.0 + distance * distance
    ambient = np.float32(scene.ambient) * (0.75 + 0.25 * normals32[1])
    light = ambient[None, :] + diffuse[None, :] * scene.light_colour[:, None].astype(np.float32)
    radiance = albedo.astype(np.float32) * light * np.float32(scene.exposure)

    # Camera response: gamma through a 12-bit table, then sensor noise (deterministic per scene).
    levels = np.minimum(radiance * 4095.0 + 0.5, 4095.0).astype(np.int32)
    srgb = _GAMMA_TABLE[np.maximum(levels, 0)].reshape(3, H, W)
    rng = np.random.default_rng(int(flat_hit.sum() + semseg.sum()))
    srgb += rng.standard_normal(srgb.shape, dtype=np.float32) * np.float32(scene.noise * 255.0)
    image = np.clip(srgb + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)  # -> (H, W, 3)

    normals_cam = (R.T @ normals_world).reshape(3, H, W)  # world -> camera: n_c = R^T n_w
    semseg = semseg.reshape(H, W)
    parts = parts.reshape(H, W)
    return {
        "image": np.ascontiguousarray(image),
        "semseg": semseg,
        "human_parts": parts,
        "depth": depth.astype(np.float32),
        "normals": normals_cam.astype(np.float32),
        "saliency": _salient_groups(group.reshape(H, W), parts, semseg),
        "edge": boundary_edges(semseg, depth, hit),
        "intrinsics": np.array([cam.fx, cam.fy, cam.cx, cam.cy], dtype=np.float32),
    }


def boundary_edges(labels: np.ndarray, depth: np.ndarray, surface: np.ndarray) -> np.ndarray:
    """One-pixel edges: the nearer pixel of each neighbouring pair across a boundary.

    A pair is a boundary where ``labels`` differ, or where ``surface`` ids differ and the depth
    changes by more than :data:`DEPTH_JUMP` of the nearer depth. Returns uint8 ``(H, W)`` in 0/1.
    """
    edge = np.zeros(labels.shape, dtype=bool)
    for axis in (0, 1):
        a = [slice(None), slice(None)]
        b = [slice(None), slice(None)]
        a[axis], b[axis] = slice(None, -1), slice(1, None)
        a, b = tuple(a), tuple(b)
        nearer = np.minimum(depth[a], depth[b])
        jump = (surface[a] != surface[b]) & (np.abs(depth[a] - depth[b]) > DEPTH_JUMP * nearer)
        boundary = (labels[a] != labels[b]) | jump
        first_nearer = depth[a] <= depth[b]
        edge[a] |= boundary & first_nearer
        edge[b] |= boundary & ~first_nearer
    return edge.astype(np.uint8)


def _salient_groups(group: np.ndarray, parts: np.ndarray, semseg: np.ndarray) -> np.ndarray:
    """The figure and every object (not room, not rug) covering >= SALIENT_AREA of the image."""
    background = (semseg == CLASS["floor"]) | (semseg == CLASS["wall"])
    background |= (semseg == CLASS["ceiling"]) | (semseg == CLASS["rug"])
    counts = np.bincount(group[~background].ravel(), minlength=int(group.max()) + 1)
    big = np.flatnonzero(counts >= SALIENT_AREA * group.size)
    salient = np.isin(group, big) & ~background
    salient |= parts > 0
    return salient.astype(np.uint8)


def generate_sample(seed: int, split: str, index: int, height: int, width: int) -> dict:
    """Scene ``index`` of ``split`` for ``seed``, rendered at ``height`` x ``width``."""
    rng = scene_rng(seed, split, index)
    scene = build_scene(rng, height, width)
    return render_scene(scene, height, width)


# ----------------------------------------------------------------------------------------------
# The synthetic dataset as a sample source (same interface as the folder readers)
# ----------------------------------------------------------------------------------------------


class SyntheticReader:
    """Generates the scenes of the synthetic dataset on demand, one per sample id."""

    dataset = "synthetic"
    variant = f"generator-v{GENERATOR_VERSION}"
    splits = ("train", "val")
    extras = ("intrinsics",)

    def __init__(self, num_train: int, num_val: int, height: int, width: int, seed: int):
        from bridgenet_cli.data.info import DATASETS
        from bridgenet_cli.errors import BridgeNetError

        for name, value in (("num_train", num_train), ("num_val", num_val)):
            if value < 1:
                raise BridgeNetError(
                    f"synthetic {name} must be at least 1, got {value}", "use 1 or more"
                )
        if height < 32 or width < 32:
            raise BridgeNetError(
                f"synthetic images must be at least 32x32, got {height}x{width}",
                "use a larger size",
            )
        self.counts = {"train": num_train, "val": num_val}
        self.height, self.width, self.seed = height, width, seed
        self.tasks = DATASETS.get("synthetic").tasks

    @property
    def info(self):
        from bridgenet_cli.data.info import DATASETS

        return DATASETS.get("synthetic")

    def split_ids(self, split: str) -> list[str]:
        return [f"{split}-{index:05d}" for index in range(self.counts[split])]

    def output_size(self, split: str, sample_id: str) -> tuple[int, int]:
        return self.height, self.width

    def read(
        self, split: str, sample_id: str, checksum: bool = True
    ) -> tuple[dict[str, np.ndarray], str]:
        import hashlib

        index = int(sample_id.rsplit("-", 1)[1])
        record = generate_sample(self.seed, split, index, self.height, self.width)
        if not checksum:
            return record, ""
        digest = hashlib.blake2b(record["image"].tobytes(), digest_size=16).hexdigest()
        return record, digest

    def options(self) -> dict[str, object]:
        """The settings that determine every scene (recorded in the cache and compared on use)."""
        return {
            "num_train": self.counts["train"],
            "num_val": self.counts["val"],
            "height": self.height,
            "width": self.width,
            "seed": self.seed,
            "generator_version": GENERATOR_VERSION,
        }

    def prepare_command(self) -> str:
        return (
            f"bridgenet prepare-data synthetic --num-train {self.counts['train']} "
            f"--num-val {self.counts['val']} --height {self.height} --width {self.width} "
            f"--seed {self.seed}"
        )

    def cache_name(self) -> str:
        """File name of this setting's cache in the data directory."""
        return (
            f"synthetic-v{GENERATOR_VERSION}-{self.height}x{self.width}-"
            f"{self.counts['train']}+{self.counts['val']}-seed{self.seed}.h5"
        )
