"""What every motion-model bundle (the latent MotionModel, the PixelMotionModel) answers the same
way from its config: the grid it predicts on and its number of bands."""


class ModelGrid:
    """Mixin for a bundle with a `config` that has width, height and num_bands."""

    @property
    def num_bands(self) -> int:
        return self.config.num_bands

    @property
    def width(self) -> int:
        return self.config.width

    @property
    def height(self) -> int:
        return self.config.height
