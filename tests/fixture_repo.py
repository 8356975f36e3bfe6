"""A small multi-language workspace for indexer tests."""
from __future__ import annotations

from pathlib import Path

FILES = {
    "src/files.py": '''import os


def read_text(path: str) -> str:
    """Return the whole contents of a text file."""
    with open(path, encoding="utf-8") as f:
        return f.read()


class Cache:
    """Keeps computed values in memory."""

    def get(self, key):
        return self.data.get(key)

    def put(self, key, value):
        self.data[key] = value
''',
    "src/mathutil.py": '''def fibonacci(n):
    """The n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def is_prime(n):
    return n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))
''',
    "web/app.js": '''// Send an HTTP GET request and parse the JSON reply.
export async function fetchJson(url) {
  const res = await fetch(url);
  return res.json();
}

/** A shopping cart. */
class Cart {
  /** Total price of all items. */
  total() { return this.items.reduce((s, i) => s + i.price, 0); }
}

const debounce = (fn, ms) => { let t; return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; };
''',
    "web/types.ts": '''export interface User { name: string; age: number }

/** Sort users by age, youngest first. */
export function sortByAge(users: User[]): User[] {
  return [...users].sort((a, b) => a.age - b.age);
}
''',
    "web/Button.tsx": '''export function Button(props: { label: string }) {
  return <button>{props.label}</button>;
}
''',
    "server/main.go": '''package main

// Server listens for connections.
type Server struct {
	addr string
}

// Start opens the listening socket.
func (s *Server) Start() error {
	return nil
}

func main() {}
''',
    "core/lib.rs": '''/// A point in the plane.
pub struct Point { pub x: f64, pub y: f64 }

impl Point {
    /// Distance from the origin.
    pub fn norm(&self) -> f64 { (self.x * self.x + self.y * self.y).sqrt() }
}
''',
    "java/Greeter.java": '''/** Greets people. */
public class Greeter {
    /** Say hello to someone. */
    public String greet(String who) { return "hello " + who; }
}
''',
    "docs/notes.md": "# Notes\n\nHow to deploy the service to production.\n\nRun the migration first.\n",
    ".gitignore": "*.log\nbuild/\n",
    "src/.gitignore": "generated_*.py\n!generated_keep.py\n",
    "src/generated_api.py": "def generated():\n    return 1\n",
    "src/generated_keep.py": "def kept_generated():\n    return 2\n",
    "debug.log": "error error error\n",
    "build/out.py": "def built():\n    pass\n",
    "node_modules/lib/index.js": "function vendored() {}\n",
    ".env": "API_KEY=supersecret\n",
    ".env.production": "DB_PASSWORD=hunter2\n",
    "deploy/server.pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    "deploy/settings.py": "KEY = '''\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\n'''\n",
}
BINARY = {"assets/logo.png": b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "data/latin1.txt": "caf\xe9 cr\xe8me".encode("latin-1")}


def make_repo(root: Path) -> Path:
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    for rel, data in BINARY.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "data" / "big.txt").write_text("x = 1\n" * 200_000)  # 1.2 MB: over the default limit
    return root
