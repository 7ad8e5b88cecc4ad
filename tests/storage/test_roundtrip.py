"""Session files: what is written is what is read."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from lumbar.errors import SessionFileError, ValidationError
from lumbar.storage import SessionWriter, read_channel, read_session, write_group, write_session
from lumbar.storage.reader import open_h5
from lumbar.types import Event, SessionInfo

from tests.storage.synthetic import make_batch


def test_round_trip_equal(tmp_path, two_sensors, session_info):
    p = tmp_path / "s.h5"
    batches = {s.sensor_id: make_batch(s.sensor_id, 5000, seed=i) for i, s in enumerate(two_sensors)}
    events = [Event(1.5, "rep_start", "first rep"), Event(0.5, "trial_start")]
    write_session(p, session_info, two_sensors, batches, events)
    s = read_session(p)
    assert s.complete and s.format_version == 1
    assert s.info == session_info
    assert s.sensors == {x.sensor_id: x for x in two_sensors}
    for sid, b in batches.items():
        r = s.data[sid]
        np.testing.assert_array_equal(r.time_s, b.time_s)
        np.testing.assert_array_equal(r.device_time_s, b.device_time_s)
        np.testing.assert_array_equal(r.seq, b.seq)
        np.testing.assert_array_equal(r.flags, b.flags)
        # acc/gyro are stored as float32 (24-bit mantissa > the sensors' 16 bits)
        np.testing.assert_allclose(r.acc, b.acc, rtol=1e-7, atol=1e-6)
        np.testing.assert_allclose(r.gyro, b.gyro, rtol=1e-7, atol=1e-7)
    assert [e.label for e in s.events] == ["trial_start", "rep_start"]
    assert s.events[1] == Event(1.5, "rep_start", "first rep")
    np.testing.assert_allclose(read_channel(p, "lumbar", "acc"), batches["lumbar"].acc, atol=1e-6)


def test_live_appends_in_pieces_equal_one_piece(tmp_path, two_sensors, session_info):
    p = tmp_path / "live.h5"
    whole = make_batch("lumbar", 3000)
    with SessionWriter(p, session_info, two_sensors[:1], flush_interval_s=0.01) as w:
        for i in range(0, 3000, 7):
            w.append(whole[i:i + 7])
    r = read_session(p).data["lumbar"]
    np.testing.assert_array_equal(r.time_s, whole.time_s)
    np.testing.assert_array_equal(r.seq, whole.seq)


def test_live_chunks_written_directly_decode_with_hdf5_filters(tmp_path, two_sensors, session_info):
    """The live writer compresses chunks itself (shuffle + deflate, as HDF5's filters store them) and
    rewrites the last partial chunk at each flush: HDF5's own filter pipeline, in a second reader while
    the recording goes on, decodes exactly the samples written — across chunk boundaries, NaN included."""
    from lumbar.storage import schema

    p = tmp_path / "direct.h5"
    whole = make_batch("lumbar", 2 * schema.LIVE_CHUNK_ROWS + 300, seed=4)
    whole.acc[100] = np.nan
    w = SessionWriter(p, session_info, two_sensors[:1])
    sizes = [1, 511, 1, 300, 474, 37]  # ends exactly on, just after and far past chunk boundaries
    assert sum(sizes) == len(whole)
    i = 0
    with h5py.File(p, "r", swmr=True) as f:
        for n in sizes:
            w.append(whole[i:i + n])
            w.flush()
            i += n
            for name in ("time_s", "device_time_s", "acc", "gyro", "seq", "flags"):
                ds = f[f"sensors/lumbar/{name}"]
                ds.refresh()
                expected = np.asarray(getattr(whole, name)[:i], dtype=ds.dtype)
                np.testing.assert_array_equal(ds[()], expected, err_msg=f"{name} after {i} rows")
    w.close()


def test_reader_follows_live_file(tmp_path, two_sensors, session_info):
    """A second reader (SWMR) sees flushed samples while the recording goes on."""
    p = tmp_path / "follow.h5"
    w = SessionWriter(p, session_info, two_sensors)
    w.append(make_batch("lumbar", 400))
    w.flush()
    with h5py.File(p, "r", swmr=True) as f:
        assert f["sensors/lumbar/time_s"].shape == (400,)
        w.append(make_batch("lumbar", 100, start=400))
        w.flush()
        f["sensors/lumbar/time_s"].refresh()
        assert f["sensors/lumbar/time_s"].shape == (500,)
    w.close()


def test_long_event_note_cut_at_character_boundary(tmp_path, two_sensors, session_info):
    p = tmp_path / "ev.h5"
    note = "é" * 300  # 600 bytes in UTF-8
    write_session(p, session_info, two_sensors, {}, [Event(0.0, "x", note)])
    got = read_session(p).events[0].note
    assert got == "é" * 128


def test_write_group_for_derived_data(tmp_path, two_sensors, session_info):
    p = tmp_path / "d.h5"
    write_session(p, session_info, two_sensors, {"lumbar": make_batch("lumbar", 10)})
    write_group(p, "truth", {"time_s": np.arange(3.0), "segment/lumbar/quat": np.eye(4)[:3]}, {"movement": "flexion"})
    s = read_session(p)
    assert s.truth_attrs["movement"] == "flexion"
    np.testing.assert_array_equal(s.truth["segment/lumbar/quat"], np.eye(4)[:3])


def test_write_group_compressed_chunks_read_back_exactly(tmp_path, two_sensors, session_info):
    """Big arrays are compressed chunk by chunk on threads and written as HDF5's own shuffle + gzip
    filters would store them: h5py (any HDF5 reader) decodes them, whole or in part."""
    p = tmp_path / "g.h5"
    write_session(p, session_info, two_sensors, {"lumbar": make_batch("lumbar", 10)})
    rng = np.random.default_rng(5)
    arrays = {
        "quat": rng.normal(size=(10_001, 4)).astype(np.float32),  # last chunk partial
        "time_s": np.arange(10_001) / 200.0,
        "flags": (rng.random(10_001) < 0.1).astype(np.uint8),
        "counts": rng.integers(-5, 5, size=(3000, 2, 3)).astype(np.int16),
        "big_endian": np.arange(2000, dtype=">f8"),
        "labels": np.array([b"ab", b"cd"] * 1000),
        "small": np.arange(10.0),
        "scalar": np.float64(2.5),
    }
    write_group(p, "derived", arrays, {"note": "x"}, compression_level=1, chunk_rows=4096)
    with h5py.File(p) as f:
        g = f["derived"]
        for name, a in arrays.items():
            assert g[name].dtype == np.asarray(a).dtype and np.array_equal(g[name][()], a), name
        assert g["quat"].chunks == (4096, 4) and g["quat"].compression == "gzip" and g["quat"].shuffle
        assert g["quat"].compression_opts == 1
        np.testing.assert_array_equal(g["quat"][8190:8200], arrays["quat"][8190:8200])
        assert g["quat"].id.get_storage_size() < arrays["quat"].nbytes
        assert g["small"].chunks is None
    with pytest.raises(ValidationError):
        write_group(p, "derived", arrays, compression_level=0)


def test_writer_refuses_bad_input(tmp_path, two_sensors, session_info):
    p = tmp_path / "bad.h5"
    with SessionWriter(p, session_info, two_sensors) as w:
        w.append(make_batch("lumbar", 100, start=100))
        with pytest.raises(ValidationError, match="backwards"):
            w.append(make_batch("lumbar", 10, start=0))
        with pytest.raises(ValidationError, match="not declared"):
            w.append(make_batch("thigh_left", 10))
        with pytest.raises(ValidationError, match="finite"):
            w.add_event(Event(float("nan"), "x"))
    # nothing refused made it into the file, everything accepted did
    assert len(read_session(p).data["lumbar"]) == 100
    with pytest.raises(SessionFileError, match="already exists"):
        SessionWriter(p, session_info, two_sensors)


def test_subject_code_must_be_pseudonymous():
    with pytest.raises(ValidationError, match="pseudonymous"):
        SessionInfo("Jane Doe")


def test_closed_file_marked_complete(tmp_path, two_sensors, session_info):
    p = tmp_path / "c.h5"
    w = SessionWriter(p, session_info, two_sensors)
    with open_h5(p) as (f, interrupted):
        assert not f.attrs["complete"]  # in-process the library shares the open file, so only the flag tells
    w.close()
    with open_h5(p) as (f, interrupted):
        assert not interrupted and f.attrs["complete"]


def test_compacted_live_recording_is_exact_and_keeps_the_filters(tmp_path, two_sensors, session_info):
    """Closing a live recording rewrites it with the final chunks, compressed on threads and stored as
    HDF5's own shuffle + gzip filters would: every column reads back exactly, through plain h5py."""
    p = tmp_path / "live.h5"
    whole = make_batch("lumbar", 10_001, seed=3)  # two full final chunks and a partial one
    with SessionWriter(p, session_info, two_sensors[:1], flush_interval_s=0.01) as w:
        for i in range(0, 10_001, 500):
            w.append(whole[i:i + 500])
    r = read_session(p).data["lumbar"]
    for col in ("time_s", "device_time_s", "seq", "flags"):
        np.testing.assert_array_equal(getattr(r, col), getattr(whole, col))
    np.testing.assert_array_equal(r.acc, whole.acc.astype(np.float32))
    with h5py.File(p) as f:
        acc = f["sensors/lumbar/acc"]
        assert acc.chunks[0] == 4096 and acc.compression == "gzip" and acc.shuffle and acc.maxshape[0] is None


def test_threaded_whole_reads_equal_h5py(tmp_path):
    """Closed files' columns are inflated on threads from the stored chunks: the arrays are exactly
    what h5py's own filter pipeline gives, for every layout the writers make (and others fall back)."""
    from concurrent.futures import ThreadPoolExecutor

    from lumbar.storage._chunks import _layout, read_all

    rng = np.random.default_rng(11)
    arrays = {
        "f32x3": rng.normal(size=(20_001, 3)).astype(np.float32),
        "f64": rng.normal(size=17_000),
        "i64": np.arange(30_000, dtype=np.int64),
        "u8": (rng.random(9_000) < 0.2).astype(np.uint8),
        "i16x2x3": rng.integers(-9, 9, size=(5_000, 2, 3)).astype(np.int16),
    }
    p = tmp_path / "layouts.h5"
    with h5py.File(p, "w") as f:
        for name, a in arrays.items():
            f.create_dataset(name, data=a, chunks=(1024, *a.shape[1:]), compression="gzip", shuffle=True)
            f.create_dataset(name + "_noshuffle", data=a, chunks=(1024, *a.shape[1:]), compression="gzip")
        f.create_dataset("lzf", data=arrays["f64"], chunks=(1024,), compression="lzf")
        f.create_dataset("contiguous", data=arrays["f64"])
        f.create_dataset("chunked_2d", data=arrays["f32x3"], chunks=(1024, 1), compression="gzip")
    with h5py.File(p, "r") as f, ThreadPoolExecutor(2) as pool:
        # the threaded path is taken where it should be, and only there
        assert _layout(f["f32x3"]) == (1024, True) and _layout(f["i64_noshuffle"]) == (1024, False)
        assert _layout(f["lzf"]) is None and _layout(f["contiguous"]) is None and _layout(f["chunked_2d"]) is None
        for name in f:
            got = read_all(f[name], pool)
            want = f[name][()]
            assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want), name
