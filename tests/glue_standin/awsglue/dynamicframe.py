"""DynamicFrame and DynamicFrameCollection stand-ins: a DataFrame with a name, and a dict of them."""

from __future__ import annotations


class DynamicFrame:
    def __init__(self, df, glue_ctx, name: str = "") -> None:
        self._df, self.glue_ctx, self.name = df, glue_ctx, name

    @classmethod
    def fromDF(cls, dataframe, glue_ctx, name: str) -> DynamicFrame:  # noqa: N802 - Glue's name
        return cls(dataframe, glue_ctx, name)

    def toDF(self):  # noqa: N802 - Glue's name
        return self._df

    def count(self) -> int:
        return self._df.count()


class DynamicFrameCollection:
    def __init__(self, dynamic_frames: dict[str, DynamicFrame], glue_ctx) -> None:
        self._frames, self.glue_ctx = dict(dynamic_frames), glue_ctx

    def keys(self):
        return self._frames.keys()

    def values(self):
        return self._frames.values()

    def select(self, key: str, transformation_ctx: str = "") -> DynamicFrame:
        return self._frames[key]

    def __getitem__(self, key: str) -> DynamicFrame:
        return self._frames[key]

    def __len__(self) -> int:
        return len(self._frames)
