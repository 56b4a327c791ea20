"""A real Switchyard cluster for the integration tests: `switchyard serve` processes on
loopback ports, started from the built binary (SWITCHYARD_BIN, else target/debug)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[3]


def binary() -> str:
    path = os.environ.get("SWITCHYARD_BIN") or str(REPO / "target" / "debug" / "switchyard")
    if not Path(path).exists():
        raise RuntimeError(
            f"no switchyard binary at {path}: run `cargo build -p switchyard-cli` "
            "or set SWITCHYARD_BIN"
        )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """N nodes; `kill_all()` / `start_all()` keep their ports and data."""

    def __init__(self, n: int = 3) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="switchyard-py-")
        self.ports = [(free_port(), free_port()) for _ in range(n)]
        self.peers = ",".join(f"{i + 1}=127.0.0.1:{g}" for i, (g, _) in enumerate(self.ports))
        self.procs: Dict[int, Optional[subprocess.Popen[bytes]]] = {}
        self.start_all()

    @property
    def endpoints(self) -> str:
        return ",".join(f"127.0.0.1:{g}" for g, _ in self.ports)

    def start_all(self) -> None:
        for i, (g, h) in enumerate(self.ports):
            node = i + 1
            if self.procs.get(node) is not None:
                continue
            log = open(Path(self.dir.name) / f"node{node}.log", "ab")
            env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
            env["RUST_LOG"] = "info,openraft=warn"
            self.procs[node] = subprocess.Popen(
                [binary(), "serve", "--node-id", str(node),
                 "--data-dir", str(Path(self.dir.name) / f"n{node}"),
                 "--grpc-addr", f"127.0.0.1:{g}", "--http-addr", f"127.0.0.1:{h}",
                 "--peers", self.peers],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env,
            )

    def kill_all(self) -> None:
        for node, proc in self.procs.items():
            if proc is not None:
                proc.kill()
                proc.wait()
                self.procs[node] = None

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
        out = subprocess.run(
            [binary(), "--endpoints", self.endpoints, *args],
            capture_output=True, text=True, timeout=30, env=env,
        )
        if check and out.returncode != 0:
            raise AssertionError(f"switchyard {' '.join(args)} failed: {out.stderr}")
        return out

    def put_policy(self, policy: Dict[str, object], timeout_s: float = 60.0) -> None:
        """Writes a policy, retrying until the cluster has a leader that accepts it."""
        path = Path(self.dir.name) / "policy.json"
        path.write_text(json.dumps(policy))
        deadline = time.monotonic() + timeout_s
        while True:
            out = self.cli("policy", "put", str(path), check=False)
            if out.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"policy put never succeeded: {out.stderr}\n{self.logs()}")
            time.sleep(0.2)

    def logs(self) -> str:
        parts: List[str] = []
        for node in self.procs:
            p = Path(self.dir.name) / f"node{node}.log"
            text = p.read_text(errors="replace") if p.exists() else ""
            parts.append(f"--- node {node} ---\n" + "\n".join(text.splitlines()[-30:]))
        return "\n".join(parts)

    def close(self) -> None:
        self.kill_all()
        self.dir.cleanup()
