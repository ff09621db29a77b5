"""A throwaway Prometheus from the machine's Debian package, for tests of scrapes, rules and alerts.

It listens on 127.0.0.1 on a free port, keeps its TSDB in a fresh temporary directory that is
removed when it stops, sends nothing anywhere (no remote write, no Alertmanager) and accepts
POST /-/reload, so a test can change its rule files and reload them. A missing package fails the
test with what to install: nothing skips.

    with PrometheusProcess(scrape_configs=[...], rule_files=[path]) as prom:
        prom.wait_for_query('up{job="demo-api"} == 1', timeout=30)

or, from a test, the `prometheus_factory` fixture (registered in a conftest), which stops every
Prometheus it started when the test ends, passed or failed.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import pytest
import yaml

from tests.support.services import free_port, stop_process
from tests.support.wait import wait_until

PROMETHEUS_BINARY = Path("/usr/bin/prometheus")
INSTALL_HINT = (
    "run `make install` (hack/install-system-deps.sh; Debian: apt-get install -y prometheus)"
)
LOG_TAIL_CHARS = 4000


class PrometheusError(RuntimeError):
    """Prometheus answered with an error (a bad query, a rule file it would not load)."""


class PrometheusProcess:
    """One Prometheus server process; `start()` (or `with`) runs it, `stop()` removes everything.

    `scrape_configs` are Prometheus `scrape_configs` entries as dicts, written as given;
    `rule_files` are paths, read by Prometheus at start and at every `reload()`.
    """

    def __init__(
        self,
        *,
        scrape_configs: Sequence[Mapping[str, Any]] = (),
        rule_files: Sequence[str | Path] = (),
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        extra_args: Sequence[str] = (),
        startup_timeout: float = 60,
        binary: Path = PROMETHEUS_BINARY,
    ) -> None:
        if not binary.is_file():
            pytest.fail(f"{binary} not found: {INSTALL_HINT}")
        self.binary = binary
        self.scrape_configs = [dict(config) for config in scrape_configs]
        self.rule_files = [Path(path).resolve() for path in rule_files]
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.port = free_port()
        self.workdir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._client: httpx.Client | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self._workdir() / "prometheus.yml"

    @property
    def log_path(self) -> Path:
        return self._workdir() / "prometheus.log"

    # Lifecycle.

    def start(self) -> Self:
        if self.process is not None:
            raise RuntimeError("this Prometheus is already running")
        self.workdir = Path(tempfile.mkdtemp(prefix="taskmanager-prometheus-"))
        self._write_config()
        argv = [
            str(self.binary),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
            *self.extra_args,
        ]
        try:
            with self.log_path.open("wb") as log:
                self.process = subprocess.Popen(
                    argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
                )
            # Proxies from the environment must not see a request meant for 127.0.0.1.
            self._client = httpx.Client(base_url=self.url, timeout=10, trust_env=False)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        process, client = self.process, self._client
        assert process is not None
        assert client is not None

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"prometheus exited ({process.returncode}):\n{self.log_tail()}")
            try:
                return client.get("/-/ready").status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_until(
                ready,
                timeout=self.startup_timeout,
                interval=0.1,
                what=f"prometheus to answer {self.url}/-/ready",
            )
        except AssertionError as error:
            pytest.fail(f"{error}\n{self.log_tail()}")

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, SIGKILL after `timeout` seconds; then the temporary directory goes."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.process is not None:
            if self.process.poll() is None:
                stop_process(self.process, timeout=timeout)
            self.process = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        """The end of Prometheus' own output (stderr, where it logs), for failure messages."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except (OSError, RuntimeError):
            return "(no log)"

    # Configuration.

    def reconfigure(
        self,
        *,
        scrape_configs: Sequence[Mapping[str, Any]] | None = None,
        rule_files: Sequence[str | Path] | None = None,
    ) -> None:
        """Rewrites prometheus.yml with what is given (the rest as before) and reloads it."""
        if scrape_configs is not None:
            self.scrape_configs = [dict(config) for config in scrape_configs]
        if rule_files is not None:
            self.rule_files = [Path(path).resolve() for path in rule_files]
        self._write_config()
        self.reload()

    def reload(self) -> None:
        """POST /-/reload: the configuration and the rule files are read again, synchronously."""
        response = self._http().post("/-/reload")
        if response.status_code != 200:
            # The answer only says that it failed; the log says why (which rule, which line).
            raise PrometheusError(
                f"reload failed ({response.status_code}): {response.text.strip()}\n"
                f"{self.log_tail()}"
            )

    def _write_config(self) -> None:
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "rule_files": [str(path) for path in self.rule_files],
            "scrape_configs": self.scrape_configs,
        }
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    # The HTTP API.

    def query(self, expr: str, *, time: float | None = None) -> list[dict[str, Any]]:
        """An instant query: the result's samples, `{"metric": {...}, "value": [t, "v"]}` each
        (a scalar or string result comes back as one such sample with no labels)."""
        params: dict[str, str] = {"query": expr}
        if time is not None:
            params["time"] = str(time)
        data = self._api("/api/v1/query", params)
        return _samples(data)

    def query_range(
        self, expr: str, *, start: float, end: float, step: float | str
    ) -> list[dict[str, Any]]:
        """A range query: `{"metric": {...}, "values": [[t, "v"], ...]}` per series."""
        data = self._api(
            "/api/v1/query_range",
            {"query": expr, "start": str(start), "end": str(end), "step": str(step)},
        )
        return _samples(data)

    def query_value(self, expr: str) -> float | None:
        """The value of an instant query that returns at most one sample; None when it is empty."""
        samples = self.query(expr)
        if not samples:
            return None
        if len(samples) > 1:
            raise PrometheusError(f"{expr!r} returned {len(samples)} samples: {samples}")
        return float(samples[0]["value"][1])

    def wait_for_query(
        self, expr: str, *, timeout: float = 30, what: str | None = None
    ) -> list[dict[str, Any]]:
        """Polls an instant query until it returns a sample, and returns the samples. With a
        filter in the expression (`... == 1`), this waits for a value, not only for a series."""
        # Once outside the poll: a bad expression fails now, not when the deadline passes.
        if samples := self.query(expr):
            return samples
        return wait_until(
            lambda: self.query(expr),
            timeout=timeout,
            interval=0.25,
            what=what or f"prometheus to return samples for {expr}",
        )

    def rules(self) -> dict[str, Any]:
        """/api/v1/rules' data: `{"groups": [{"name", "file", "rules": [...], ...}]}`."""
        rules: dict[str, Any] = self._api("/api/v1/rules")
        return rules

    def alerts(self) -> list[dict[str, Any]]:
        """/api/v1/alerts' pending and firing alerts: `labels`, `annotations`, `state`, ..."""
        alerts: list[dict[str, Any]] = self._api("/api/v1/alerts")["alerts"]
        return alerts

    def targets(self) -> dict[str, Any]:
        """/api/v1/targets' data: `{"activeTargets": [...], "droppedTargets": [...]}`."""
        targets: dict[str, Any] = self._api("/api/v1/targets")
        return targets

    def _http(self) -> httpx.Client:
        if self._client is None:
            raise RuntimeError("this Prometheus is not running: start() it first")
        return self._client

    def _api(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        response = self._http().get(path, params=params)
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(
                f"GET {path} answered {response.status_code}: {response.text[:2000]}"
            ) from None
        if body.get("status") != "success":
            raise PrometheusError(
                f"GET {path} {dict(params or {})}: {body.get('errorType')}: {body.get('error')}"
            )
        return body["data"]

    def _workdir(self) -> Path:
        if self.workdir is None:
            raise RuntimeError("this Prometheus has no directory: start() it first")
        return self.workdir


def _samples(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    if data["resultType"] in ("scalar", "string"):
        return [{"metric": {}, "value": data["result"]}]
    result: list[dict[str, Any]] = data["result"]
    return result


PrometheusFactory = Callable[..., PrometheusProcess]


@pytest.fixture
def prometheus_factory() -> Iterator[PrometheusFactory]:
    """Starts Prometheus servers (PrometheusProcess' arguments); all stop when the test ends."""
    with contextlib.ExitStack() as stack:

        def start(**kwargs: Any) -> PrometheusProcess:
            return stack.enter_context(PrometheusProcess(**kwargs))

        yield start
