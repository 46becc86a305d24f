#!/usr/bin/env python3
"""CPU per image of Ray Data's map_batches with headstart.FeatureExtractor
against the CLI's extract on the same image-bytes Parquet (#25): where the
throughput ratio of scripts/bench_engines.py is bounded on a saturated machine.

Usage (the venv of bench_engines.py):
    python scripts/bench_engines_cpu.py IMAGES_DIR N ROUNDS [HEADSTART_BIN]

CPU is user + system time: for the CLI, of the child process; for Ray, of the
driver and every process of its local cluster (raylet, GCS, workers, actors),
sampled every 0.1 s during the job (ray.init and shutdown outside). The CPU
of the sampling itself (a /proc walk in the driver) is counted on Ray's side.
"""

import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_engines import ray_extract, setup  # noqa: E402


def tree_stats():
    """{pid: seconds of CPU} of this process and its descendants, from /proc."""
    stats = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # After the name: state ppid ... utime stime (fields 14, 15).
            with open(f"/proc/{d}/comm") as f:
                comm = f.read().strip()
            stats[int(d)] = (int(fields[1]), int(fields[11]) + int(fields[12]), comm)
    mine, frontier = set(), [os.getpid()]
    while frontier:
        pid = frontier.pop()
        mine.add(pid)
        frontier += [c for c, (pp, _, _) in stats.items() if pp == pid and c not in mine]
    tick = os.sysconf("SC_CLK_TCK")
    return {p: (stats[p][1] / tick, stats[p][2]) for p in mine if p in stats}


class TreeCpu:
    """CPU of the process tree while running, sampled every 0.1 s: the
    raylet does not collect its workers' times when they exit, so an actor's
    CPU is its last sample (at most 0.1 s lost per exiting process)."""

    def __enter__(self):
        self.base, self.last, self.stop = tree_stats(), {}, threading.Event()
        self.names = {}
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def run(self):
        while not self.stop.wait(0.1):
            self.sample()

    def sample(self):
        for p, (cpu, comm) in tree_stats().items():
            self.last[p] = cpu
            # A worker's name is its task's while it runs one.
            if comm not in ("ray::IDLE",):
                self.names[p] = comm

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.sample()
        self.by_name = {}
        for p, v in self.last.items():
            spent = v - self.base.get(p, (0.0, ""))[0]
            name = self.names.get(p, "ray::IDLE")
            self.by_name[name] = self.by_name.get(name, 0.0) + spent
        self.seconds = sum(self.by_name.values())


def main():
    import ray

    n, rounds, binary, work, parquet = setup("hs-engines-cpu-")
    time.sleep(2)

    def cli(i):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.time()
        subprocess.run([binary, "-q", "extract", str(parquet), "--out", str(work / f"cli-{i}")],
                       check=True, stdout=subprocess.DEVNULL)
        wall = time.time() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)

    def engine(i):
        with TreeCpu() as cpu:
            t0 = time.time()
            ray_extract(parquet, work / f"ray-{i}")
            wall = time.time() - t0
        print("  Ray CPU ms per image by process: " + ", ".join(
            f"{k} {1000 * v / n:.2f}" for k, v in sorted(cpu.by_name.items(), key=lambda kv: -kv[1])
            if v > 0.005 * cpu.seconds), flush=True)
        return wall, cpu.seconds

    for r in range(rounds):
        order = [("cli", cli), ("ray", engine)]
        if r % 2:
            order.reverse()
        got = {}
        for name, run in order:
            wall, cpu = run(r)
            got[name] = (wall, cpu)
            print(f"round {r} {name}: {n / wall:.1f} images/s, {1000 * cpu / n:.2f} ms CPU per image, "
                  f"{cpu / wall:.2f} cores busy", flush=True)
        (cw, cc), (rw, rc) = got["cli"], got["ray"]
        print(f"round {r}: Ray / CLI images/s {cw / rw:.3f}; CPU per image Ray / CLI {rc / cc:.3f}; "
              f"so at most {cc / rc:.3f} on saturated cores", flush=True)
    ray.shutdown()
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
