"""The functions an ARM build of the relay ran, in the order it first ran them.

    python3 bench/order_arm.py BINARY LOG...

BINARY is the ARM mmrelay with its symbols; each LOG is what `qemu-arm -d in_asm` wrote for
one launch of it (oldest first). Every translated block's first address is looked up in the
binary's function symbols (readelf); the names are printed once each. bench/order-arm.sh
writes cross/order-arm.txt with it.
"""
import bisect
import subprocess
import sys


def functions(binary):
    out = subprocess.run(["readelf", "-sW", binary], check=True, capture_output=True, text=True)
    syms = []
    for line in out.stdout.splitlines():
        f = line.split()
        if len(f) == 8 and f[3] == "FUNC" and f[6] != "UND":
            start = int(f[1], 16) & ~1  # Thumb functions have the low bit set
            syms.append((start, max(int(f[2], 0), 1), f[7]))
    syms.sort()
    return syms


def main():
    syms = functions(sys.argv[1])
    starts = [s[0] for s in syms]
    seen, order = set(), []
    for log in sys.argv[2:]:
        block = False
        with open(log, errors="replace") as f:
            for line in f:
                if line.startswith("IN:"):
                    block = True
                elif block and line.startswith("0x"):
                    block = False
                    addr = int(line.split(":", 1)[0], 16)
                    i = bisect.bisect_right(starts, addr) - 1
                    if i >= 0 and addr < syms[i][0] + syms[i][1] and syms[i][2] not in seen:
                        seen.add(syms[i][2])
                        order.append(syms[i][2])
    if not order:
        sys.exit("no function of the binary in the logs")
    print("\n".join(order))


main()
