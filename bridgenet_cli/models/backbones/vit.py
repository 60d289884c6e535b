"""Plain ViT backbones (patch 16) built locally from timm's ``VisionTransformer``.

Three levels, all at stride 16, finest-first by convention although they share one stride: the
outputs of the blocks at half and three quarters of the depth (blocks 6 and 9 of ViT-B, 12 and 18
of ViT-L, as in the authors' release) before the final norm, and the final normed output. The class
token is dropped. Any input whose sides are multiples of 16 works; position embeddings are resized
(only when the grid differs from the one the model was built for).
"""

from functools import partial

import torch
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer

from bridgenet_cli.errors import BridgeNetError
from bridgenet_cli.models.backbones.base import BACKBONES, Backbone, FeatureLevel

PATCH = 16

# name -> (embedding width, depth, heads): the standard ViT sizes.
VIT_SIZES = {
    "vit-tiny": (192, 12, 3),
    "vit-small": (384, 12, 6),
    "vit-base": (768, 12, 12),
    "vit-large": (1024, 24, 16),
}


def check_patch_multiple(size: tuple[int, int], what: str) -> None:
    if size[0] % PATCH or size[1] % PATCH or min(size) <= 0:
        raise BridgeNetError(
            f"{what} {size[0]}x{size[1]} is not a multiple of {PATCH} on both sides",
            f"ViT backbones need image sides divisible by {PATCH}, e.g. 512x512 or 448x576",
        )


class ViTBackbone(Backbone):
    """A timm ViT returning three stride-16 maps ``(B, C, H/16, W/16)``: two taps and the output."""

    checkpoint_ignore = ("head.", "fc_norm.")

    def __init__(
        self,
        embed_dim: int,
        depth: int,
        num_heads: int,
        img_size: tuple[int, int],
        drop_path_rate: float = 0.0,
    ):
        super().__init__()
        check_patch_multiple(img_size, "model input size")
        if depth < 2:
            raise BridgeNetError(
                f"a ViT backbone needs at least 2 blocks, got model.backbone_depth = {depth}",
                "use 2 or more, or 0 for the named size",
            )
        self.vit = VisionTransformer(
            img_size=img_size,
            patch_size=PATCH,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            num_classes=0,
            global_pool="",
            dynamic_img_size=True,
            drop_path_rate=drop_path_rate,
        )
        # 0-based indices of the tapped blocks: half and three quarters of the depth.
        self.tap_blocks = (max(depth // 2, 1) - 1, max((3 * depth) // 4, 2) - 1)
        self.levels = [FeatureLevel(embed_dim, PATCH) for _ in range(3)]

    def weights_module(self) -> VisionTransformer:
        return self.vit

    def adapt_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Resize a checkpoint's position embeddings to this model's grid."""
        pos = state.get("pos_embed")
        if pos is not None and pos.shape != self.vit.pos_embed.shape:
            state = dict(state)
            state["pos_embed"] = resample_abs_pos_embed(
                pos, new_size=self.vit.patch_embed.grid_size, num_prefix_tokens=1
            )
        return state

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        B, _, H, W = images.shape
        check_patch_multiple((H, W), "input size")

        x = self.vit.patch_embed(images)  # (B, 3, H, W) -> (B, h, w, C)
        _, h, w, C = x.shape
        pos_embed = resample_abs_pos_embed(
            self.vit.pos_embed, new_size=(h, w), old_size=self.vit.patch_embed.grid_size
        )
        cls = self.vit.cls_token.expand(B, -1, -1)
        x = torch.cat([cls, x.reshape(B, h * w, C)], dim=1) + pos_embed  # (B, 1 + h*w, C)
        x = self.vit.norm_pre(self.vit.pos_drop(x))

        taps = []
        for index, block in enumerate(self.vit.blocks):
            x = block(x)
            if index in self.tap_blocks:
                taps.append(x)
        taps.append(self.vit.norm(x))

        # (B, 1 + h*w, C) -> drop the class token -> (B, C, h, w), a channels-last view
        return [t[:, 1:].reshape(B, h, w, C).permute(0, 3, 1, 2) for t in taps]


def _build_vit(name: str, img_size, pretrained=None, drop_path_rate=0.0, extra=()) -> ViTBackbone:
    embed_dim, depth, num_heads = VIT_SIZES[name]
    depth = int(dict(extra).get("depth") or depth)
    backbone = ViTBackbone(embed_dim, depth, num_heads, tuple(img_size), drop_path_rate)
    if pretrained:
        backbone.load_pretrained(pretrained)
    return backbone


for _name in VIT_SIZES:
    BACKBONES.register(_name, partial(_build_vit, _name))
