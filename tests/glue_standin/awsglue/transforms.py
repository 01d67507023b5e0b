"""awsglue.transforms stand-in: generated scripts `import *` from it; the job uses none of its transforms."""

__all__: list[str] = []
