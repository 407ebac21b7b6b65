"""`flopwise ultralytics:yolo11n.yaml`: a model YAML the ultralytics package ships (or a YAML file), built with random
weights by ultralytics itself, offline (nothing downloaded), and counted as any PyTorch model. Default input
1×3×640×640 (224×224 for classification models); `--input`, `--batch` and `--dtype` work as for other models."""

from __future__ import annotations

from ..edge.ultralytics import UnknownYaml, ultralytics_model
from .errors import ModelError, UsageError
from .inputs import Shaped
from .spec import Loaded, Spec


def load_ultralytics(spec: Spec) -> Loaded:
    try:
        model, shape = ultralytics_model(spec.target)
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] != "ultralytics":
            raise
        raise UsageError(
            f"{spec.text}: ultralytics: specs need the ultralytics package: pip install 'flopwise[ultralytics]'"
        ) from None
    except UnknownYaml as error:
        raise UsageError(f"{spec.text}: {error}") from None
    except Exception as error:  # ultralytics failed to build what the YAML describes
        first = str(error).strip().splitlines()[0] if str(error).strip() else "(no message)"
        raise ModelError(f"{spec.text}: building the model raised {type(error).__name__}: {first}") from error
    return Loaded(spec.text, model, Shaped(shape))
