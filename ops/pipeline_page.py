"""The pipeline page in the Airflow UI: a FastAPI app that the api-server serves under
`/userstream/` (plugins/userstream_pipeline.py registers it, with an entry in the UI's
navigation). It shows per hop what `make status` shows, the last hour as a chart, the latest
messages of the topic decoded with their writer schema, the latest dead letters and quarantined
records, and the alerts received; `/userstream/api/status` gives the same as JSON.

A plugin's app is not behind Airflow's login by itself: every route depends on the api-server's
own check of the caller's token (the UI's cookie, or a bearer token), so an anonymous request gets
401 or 403 and no data.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from typing import Any

URL_PREFIX = "/userstream"
JSON_PATH = "/api/status"
TITLE = "userstream pipeline"
COUNT_BUDGET_S = 3.0  # Cassandra's row count pages through the table: a lower bound past this


def _pg_connect():
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from include import names

    conn = PostgresHook(postgres_conn_id=names.POSTGRES_STATUS_CONN_ID).get_conn()
    conn.autocommit = True
    return conn


def _cassandra_session() -> tuple[Any, Any]:
    from airflow.providers.apache.cassandra.hooks.cassandra import CassandraHook

    from include import names

    hook = CassandraHook(names.CASSANDRA_CONN_ID)
    session = hook.get_conn()
    return hook.cluster, session


def _last_runs() -> dict[str, Any]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from include import names

    runs: dict[str, Any] = {}
    with create_session() as session:
        for dag_id in names.PIPELINE_DAG_IDS:
            run = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id)
                                  .order_by(DagRun.run_after.desc()).limit(1)).first()
            runs[dag_id] = None if run is None else {
                "state": str(run.state), "run_type": str(run.run_type),
                "start_date": run.start_date.isoformat() if run.start_date else None,
                "end_date": run.end_date.isoformat() if run.end_date else None}
    return runs


def _asset_events(since: datetime) -> list[tuple[str, datetime, dict[str, Any]]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.name, AssetEvent.timestamp, AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.timestamp >= since)).all()
    return [(name, timestamp, extra or {}) for name, timestamp, extra in rows]


def _webhook_url() -> str | None:
    from airflow.exceptions import AirflowNotFoundException
    from airflow.sdk import BaseHook

    from include import names

    try:
        conn = BaseHook.get_connection(names.ALERTS_WEBHOOK_CONN_ID)
    except AirflowNotFoundException:
        return None
    host = conn.host or ""
    if "://" in host:  # the whole webhook URL in the host, as HttpHook takes it
        return host
    port = f":{conn.port}" if conn.port else ""
    return f"{conn.schema or 'http'}://{host}{port}"


def collect() -> dict[str, Any]:
    """The page's data, read now through the pipeline's connections."""
    from include import names
    from include.connections import kafka_config, registry_url
    from include.stream.job import CHECKPOINT_NAME, checkpoint_root
    from ops.pipeline_status import gather
    from ops.pipeline_view import page_data

    now, kafka = datetime.now(UTC), kafka_config(names.KAFKA_STATUS_CONN_ID)
    status = gather(pg_connect=_pg_connect, cassandra_session=_cassandra_session,
                    kafka_config=kafka, checkpoint=checkpoint_root() / CHECKPOINT_NAME,
                    last_runs=_last_runs, count_budget_s=COUNT_BUDGET_S)
    return page_data(status, lambda: _asset_events(now - timedelta(hours=1)), _pg_connect,
                     _cassandra_session, kafka, registry_url, _webhook_url, now)


def create_app() -> Any:
    from airflow.api_fastapi.core_api.security import requires_authenticated
    from fastapi import Depends, FastAPI
    from fastapi.responses import HTMLResponse, Response

    from ops.pipeline_view import as_json

    app = FastAPI(title=TITLE, dependencies=[Depends(requires_authenticated())])

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return render_page(collect())

    @app.get(JSON_PATH)
    def status() -> Response:
        return Response(as_json(collect()), media_type="application/json")

    return app


# --- HTML ---------------------------------------------------------------------------------------

def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else _e(value)


def _probe(part: dict[str, Any], body) -> str:
    if part.get("error"):
        return f'<p class="error">unavailable: {_e(part["error"])}</p>'
    return body(part["value"])


def chart(series: dict[str, list[int] | None], width: int = 720, height: int = 180) -> str:
    """An inline SVG line chart of users per minute by hop, and the lag, over the last hour, with
    its legend below."""
    colours = {"staged": "#1f77b4", "published": "#ff7f0e", "landed": "#2ca02c",
               "lag": "#d62728"}
    drawn = {k: v for k, v in series.items() if v}
    top = max([1] + [max(v) for v in drawn.values()])
    lines, legend = [], []
    for name, values in drawn.items():
        step = width / max(len(values) - 1, 1)
        points = " ".join(f"{x * step:.1f},{height - v / top * (height - 10):.1f}"
                          for x, v in enumerate(values))
        colour = colours.get(name, "#333")
        lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                     f'points="{points}"><title>{_e(name)}</title></polyline>')
        legend.append(f'<span style="color:{colour};margin-right:1.5em">{_e(name)} '
                      f'(max {_n(max(values))})</span>')
    return (f'<svg id="throughput-chart" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="users per minute and lag, '
            f'last hour" style="border-bottom:1px solid #999">{"".join(lines)}</svg>'
            f'<p>{"".join(legend)} <span style="color:#666">per minute, oldest left; the lag is '
            f'messages published and not yet landed</span></p>')


def _table(rows: list[dict[str, Any]], columns: list[str], table_id: str) -> str:
    if not rows:
        return f'<p id="{table_id}">none</p>'
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(r.get(c))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f'<table id="{table_id}"><tr>{head}</tr>{body}</table>'


def _hop_rows(data: dict[str, Any]) -> str:
    status = data["status"]

    def value(name: str, key: str | None = None) -> str:
        part = status[name]
        if part["error"]:
            return f'<span class="error">unavailable ({_e(part["error"])})</span>'
        found = part["value"] if key is None else (part["value"] or {}).get(key)
        return _n(found)

    def offsets(name: str) -> str:
        part = status[name]
        if part["error"]:
            return f'<span class="error">unavailable ({_e(part["error"])})</span>'
        return " ".join(f"p{p}={_n(o)}" for p, o in sorted((part["value"] or {}).items())) or "-"

    runs = status["last_runs"]["value"] or {}

    def run(index: int) -> str:
        from include import names

        found = runs.get(names.PIPELINE_DAG_IDS[index])
        return "none" if not found else f"{_e(found['state'])} ({_e(found['run_type'])}, " \
            f"{_e((found.get('end_date') or found.get('start_date') or '')[:19])})"

    rows = [
        ("ingest", "users staged", f'<span id="staged-users">{value("staged_users")}</span>',
         run(0)),
        ("relay", "outbox pending / failed / published",
         f'<span id="outbox-pending">{value("outbox", "pending")}</span> / '
         f'<span id="outbox-failed">{value("outbox", "failed")}</span> / '
         f'<span id="outbox-published">{value("outbox", "published")}</span>', run(1)),
        ("kafka", "end offsets", f'<span id="end-offsets">{offsets("kafka_end_offsets")}</span>',
         ""),
        ("stream", "committed offsets / lag",
         f'<span id="committed-offsets">{offsets("committed_offsets")}</span> / '
         f'<span id="lag">{_n(data["lag"])}</span>', run(2)),
        ("cassandra", "rows / dead letters",
         f'<span id="cassandra-rows">{value("cassandra_rows", "users")}</span> / '
         f'<span id="dead-letter-count">{value("cassandra_rows", "dead_letters")}</span>', ""),
    ]
    return "".join(f"<tr><th>{hop}</th><td>{what}</td><td>{shown}</td><td>{last}</td></tr>"
                   for hop, what, shown, last in rows)


def _messages(messages: list[dict[str, Any]]) -> str:
    rows = []
    for m in messages:
        record = m.get("record") or {}
        rows.append({**m, "event_id": record.get("event_id"),
                     "name": f"{record.get('first_name', '')} {record.get('last_name', '')}",
                     "country": record.get("country"), "email": record.get("email"),
                     "problem": m.get("error")})
    return _table(rows, ["partition", "offset", "timestamp", "key", "schema_id", "event_id",
                         "name", "email", "country", "problem"], "latest-messages")


def render_page(data: dict[str, Any]) -> str:
    history = data["history"]
    sections = [
        f'<table id="hops"><tr><th>hop</th><th>what</th><th>now</th><th>last run</th></tr>'
        f'{_hop_rows(data)}</table>',
        "<h2>Last hour: users per minute and lag</h2>"
        + _probe(history, chart),
        "<h2>Latest messages in users_created</h2>" + _probe(data["latest_messages"], _messages),
        "<h2>Latest dead letters</h2>" + _probe(data["dead_letters"], lambda rows: _table(
            rows, ["kafka_partition", "kafka_offset", "error", "schema_id", "dead_lettered_at"],
            "dead-letters")),
        "<h2>Latest quarantined records</h2>" + _probe(data["quarantined"], lambda rows: _table(
            rows, ["hop", "at", "key", "reason"], "quarantined")),
        "<h2>Alerts received</h2>" + _probe(data["alerts"], lambda rows: _table(
            rows, ["received_at", "hop", "problem", "summary", "detail"], "alerts")),
    ]
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{TITLE}</title>"
            "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;"
            "margin-bottom:1em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;"
            "font-size:13px}.error{color:#b00}</style></head><body>"
            f"<h1>{TITLE}</h1><p>as of <span id='generated-at'>{_e(data['generated_at'])}"
            f"</span> (<a href='{URL_PREFIX}{JSON_PATH}'>JSON</a>)</p>"
            + "".join(sections) + "</body></html>")
