"""knnie over HTTP: `create_app(models)` (FastAPI) and the `knnie serve` command.

    from knnie.service import create_app
    app = create_app({"ner": "runs/ner", "re": "runs/demo"}, api_key="secret")

The service imports the tasks and the pipeline, never the other way round.
"""

from knnie.service.app import create_app
from knnie.service.models import parse_model_args

__all__ = ["create_app", "parse_model_args"]
