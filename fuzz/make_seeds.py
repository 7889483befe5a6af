"""Regenerate the seed corpus under fuzz/corpus/ (deterministic). Run: python3 fuzz/make_seeds.py"""
import struct, zlib, random, os
here = os.path.dirname(os.path.abspath(__file__))
root = os.path.join(here, 'corpus')

def fletcher32(d):
    s1 = s2 = 0
    n = len(d) // 2
    p = 0
    while n:
        t = min(n, 360); n -= t
        for _ in range(t):
            s1 += (d[p] << 8) | d[p+1]; p += 2; s2 += s1
        s1 = (s1 & 0xffff) + (s1 >> 16); s2 = (s2 & 0xffff) + (s2 >> 16)
    if len(d) % 2:
        s1 += d[p] << 8; s2 += s1
        s1 = (s1 & 0xffff) + (s1 >> 16); s2 = (s2 & 0xffff) + (s2 >> 16)
    s1 = (s1 & 0xffff) + (s1 >> 16); s2 = (s2 & 0xffff) + (s2 >> 16)
    return (s2 << 16) | s1

def shuffle(b, e):
    n = len(b) // e
    if e <= 1 or n < 2: return bytes(b)
    out = bytearray(b)
    for i in range(n):
        for k in range(e):
            out[k*n + i] = b[i*e + k]
    return bytes(out)

FILTER = {'deflate': 0, 'fletcher32': 3, 'shuffle1': 5, 'shuffle2': 6, 'shuffle4': 7, 'shuffle8': 8}

def chunk_seed(name, payload, pipeline):
    # Encode in write order.
    cur = payload
    for f in pipeline:
        if f == 'deflate': cur = zlib.compress(cur, 6)
        elif f == 'fletcher32': cur = cur + struct.pack('<I', fletcher32(cur))
        else: cur = shuffle(cur, int(f[len('shuffle'):]))
    n = len(payload)
    assert n <= 4096
    seed = bytes([0, len(pipeline)] + [FILTER[f] for f in pipeline] + [0, 1]) \
        + struct.pack('>H', n) + bytes([8, 0x5a]) + cur
    open(f'{root}/chunk_decode/{name}', 'wb').write(seed)

# GeMS-like spectrum rows: (c=4, 2, 128)-shaped f64 chunk would be 8 KiB; keep 2 rows of 2x128 f64 = 4 KiB.
vals = []
for r in range(2):
    mz = [100.0 + 3.25 * i + r for i in range(40)] + [0.0] * 88
    it = [float((i * 37) % 101 + 1) for i in range(40)] + [0.0] * 88
    vals += mz + it
payload = struct.pack('<%dd' % len(vals), *vals)
chunk_seed('gems_f64_shuffle_deflate_fletcher', payload, ['shuffle8', 'deflate', 'fletcher32'])
chunk_seed('gems_f64_deflate', payload, ['deflate'])
f32 = struct.pack('<%df' % len(vals[:512]), *vals[:512])
chunk_seed('gems_f32_shuffle_deflate', f32[:2048], ['shuffle4', 'deflate'])
chunk_seed('plain_fletcher', bytes(range(200)), ['fletcher32'])
# Round-trip and kernel modes: structure from the bytes themselves.
rng = random.Random(7)
open(f'{root}/chunk_decode/round_trip_f64', 'wb').write(bytes([1, 1, 3, 1, 127, 3, 8, 0, 3, 0, 6, 0]) + bytes(rng.randrange(256) for _ in range(600)))
open(f'{root}/chunk_decode/round_trip_f32', 'wb').write(bytes([1, 0, 9, 1, 31, 2, 7, 0, 0, 5]) + bytes(rng.randrange(256) for _ in range(300)))
open(f'{root}/chunk_decode/kernels_elem8', 'wb').write(bytes([2, 2]) + bytes(rng.randrange(256) for _ in range(515)))

# spectrum_decode: mostly opaque bytes; the first ones pick type, layout and shape.
for i, (head, n) in enumerate([([1, 1, 0, 1, 40], 900), ([0, 0, 0, 1, 90], 1400), ([1, 0, 3, 0], 300), ([0, 1, 5, 2, 60], 2000)]):
    open(f'{root}/spectrum_decode/seed{i}', 'wb').write(bytes(head) + bytes(rng.randrange(256) for _ in range(n)))

# config_parse: first byte = cores - 1, then YAML.
cfg = os.path.join(here, '..', 'configs')
for f in sorted(os.listdir(cfg)):
    open(f'{root}/config_parse/{f}', 'wb').write(bytes([7]) + open(f'{cfg}/{f}', 'rb').read())
extra = {
    'binning.yaml': 'processing:\n  bin_width: 0.1\n  bin_range: "10:1000"\n  bin_aggregation: max\n  bin_scale: 0.5\n  bin_output: sparse\n  max_peaks: 64\n  quality_format: B\n',
    'profile.yaml': 'mode: production\nprofile:\n  num_workers: 48\n  shard_size: 1.5GiB\n  batch_size: 10000\n  writers: 2\nlogging:\n  level: DEBUG\n  file: /tmp/msms.log\n',
    'bad_key.yaml': 'processing:\n  normalise: max\n',
    'bad_value.yaml': 'profile:\n  batch_size: 0\n',
    'bin_without_width.yaml': 'processing:\n  bin_range: "0:10"\n',
    'empty.yaml': '',
    'inputs.yaml': 'inputs: [a.hdf5, "b c.hdf5"]\noutput_root: out\nprocessing:\n  max_precursor_mz: 1000.0\n  max_spectra: 5\n  min_peaks: 0\n  normalize: sqrt\n',
}
for name, text in extra.items():
    open(f'{root}/config_parse/{name}', 'wb').write(bytes([3]) + text.encode())
# Structured config documents (first byte's top bit set).
for i in range(4):
    open(f'{root}/config_parse/structured{i}', 'wb').write(bytes([0x80 | (i * 13)]) + bytes(rng.randrange(256) for _ in range(120)))
