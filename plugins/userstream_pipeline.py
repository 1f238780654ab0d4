"""The pipeline page in the Airflow UI: ops/pipeline_page.py's app, served by the api-server under
/userstream/, with an entry in the UI's navigation."""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from ops.pipeline_page import TITLE, URL_PREFIX, create_app


class UserstreamPipelinePlugin(AirflowPlugin):
    name = "userstream_pipeline"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": TITLE}]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {"name": "Pipeline", "href": f"{URL_PREFIX}/", "url_route": "userstream",
         "destination": "nav", "category": "browse"}]
