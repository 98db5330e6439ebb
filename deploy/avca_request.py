#!/usr/bin/env python
"""Example client for an `avca export` model served by TF Serving, over gRPC or REST.

Requests are built as `tensorflow_serving.apis.predict_pb2.PredictRequest`
protos; the REST body is the same request in TF Serving's columnar JSON form
(`{"signature_name": ..., "inputs": {...}}`; classify_open needs the columnar
form because `class_names` has no batch dimension).

    python deploy/avca_request.py --signature serving_default --audio a.npy --video v.npy
    python deploy/avca_request.py --transport rest --signature classify_open \\
        --audio a.npy --video v.npy --class-names "playing flute" "wood thrush calling"

Without --audio/--video it sends random features of the model's widths
(--audio-dim/--video-dim). Needs tensorflow, tensorflow-serving-api and grpcio.

Sequence models (TCaF exports, `inputs: "sequences"` in avca_export.json) take
each modality as a zero-padded [B, T, d] tensor plus its lengths [B]
(`audio_lengths`, `video_lengths`): pass one [T_i, d] array per video
(`build_request(..., audio=[a0, a1], video=[v0, v1])`, padded here by
`pad_sequences`), or padded arrays with `audio_lengths`/`video_lengths`:

    python deploy/avca_request.py --sequences --audio a.npz --video v.npz   # one array per video
    python deploy/avca_request.py --sequences --audio-dim 128 --video-dim 4096   # random

Media exports (`avca export --media`) take a video file instead: its sampled frames
(PNG, or --image-format jpeg) and audio (float samples, or --wav), cut as `avca extract`
cuts it (needs avca-tf and PyAV; docs/media.md):

    python deploy/avca_request.py --video clip.mp4                       # serving_media
    python deploy/avca_request.py --video clip.mp4 --class-names "a b"   # classify_open_media
"""
import argparse
import json
import os
import sys
import urllib.request

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
try:  # with avca-tf installed: TensorFlow's start-up noise filtered as in `avca`
    from avca_tf.cli import quiet_tensorflow_start
    quiet_tensorflow_start()
except ImportError:
    pass
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import predict_pb2  # noqa: E402

SIGNATURES = ("serving_default", "embed", "classify_open")
# `avca export --media` signatures, sent with --video FILE (a media file)
MEDIA_SIGNATURES = ("serving_media", "serving_media_wav", "classify_open_media")
MEDIA_SUFFIXES = (".mp4", ".webm", ".avi", ".mkv", ".mov")


def pad_sequences(seqs, name="sequences"):
    """One [T_i, d] array per video -> (float32 [B, max T_i, d] zero-padded at the end,
    int64 lengths [B]). ValueError naming `name` and the video on a bad entry."""
    seqs = [np.asarray(s, np.float32) for s in seqs]
    if not seqs:
        raise ValueError(f"{name}: expected at least one video")
    width = seqs[0].shape[-1] if seqs[0].ndim == 2 else None
    for i, s in enumerate(seqs):
        if s.ndim != 2 or s.shape[0] < 1 or s.shape[1] != width:
            raise ValueError(f"{name}[{i}]: shape {s.shape}, expected [steps >= 1, {width}] "
                             "like the first video")
    lengths = np.array([s.shape[0] for s in seqs], np.int64)
    out = np.zeros((len(seqs), int(lengths.max()), width), np.float32)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out, lengths


def _sequence_input(x, lengths, name):
    """(padded [B, T, d], lengths [B]) from a list of [T_i, d] arrays or padded + lengths."""
    if lengths is None:
        if isinstance(x, np.ndarray) and x.dtype != object and x.ndim == 3:
            lengths = np.full(x.shape[0], x.shape[1], np.int64)  # every step valid
            return x.astype(np.float32), lengths
        return pad_sequences(list(x), name)
    x, lengths = np.asarray(x, np.float32), np.asarray(lengths, np.int64)
    if x.ndim != 3 or lengths.shape != (x.shape[0],):
        raise ValueError(f"{name}: expected padded [batch, steps, d] with {name}_lengths "
                         f"[batch], got {x.shape} and {lengths.shape}")
    if lengths.size and (lengths.min() < 1 or lengths.max() > x.shape[1]):
        raise ValueError(f"{name}_lengths: expected values in [1, {x.shape[1]}], got "
                         f"{lengths.tolist()}")
    return x, lengths


def build_request(model_name, signature, audio, video, class_names=None, version=None,
                  sequences=False, audio_lengths=None, video_lengths=None):
    """A PredictRequest for one of the export's signatures.

    `sequences` (a sequence model's export; implied by `audio_lengths`/`video_lengths`
    or by lists of per-video arrays): `audio`/`video` are lists of [T_i, d] arrays (padded
    here) or padded [B, T, d] arrays with their lengths."""
    if signature not in SIGNATURES:
        raise ValueError(f"signature {signature!r}: expected one of {SIGNATURES}")
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = int(version)
    sequences = (sequences or audio_lengths is not None or video_lengths is not None
                 or isinstance(audio, (list, tuple)) or isinstance(video, (list, tuple)))
    if sequences:
        audio, audio_lengths = _sequence_input(audio, audio_lengths, "audio")
        video, video_lengths = _sequence_input(video, video_lengths, "video")
        if len(audio) != len(video):
            raise ValueError(f"audio has {len(audio)} videos, video {len(video)}: expected "
                             "the same videos in both")
        request.inputs["audio_lengths"].CopyFrom(tf.make_tensor_proto(audio_lengths))
        request.inputs["video_lengths"].CopyFrom(tf.make_tensor_proto(video_lengths))
    request.inputs["audio"].CopyFrom(tf.make_tensor_proto(np.asarray(audio, np.float32)))
    request.inputs["video"].CopyFrom(tf.make_tensor_proto(np.asarray(video, np.float32)))
    if signature == "classify_open":
        if not class_names:
            raise ValueError("classify_open needs at least one class name")
        request.inputs["class_names"].CopyFrom(
            tf.make_tensor_proto(np.asarray([str(n) for n in class_names], dtype=object)))
    return request


def _json_string(b):
    """TF Serving's JSON for a string: text, or {"b64": ...} for binary (encoded frames, WAV)."""
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        import base64
        return {"b64": base64.b64encode(b).decode("ascii")}


def _to_json(value):
    if value.dtype == object:
        return np.vectorize(_json_string, otypes=[object])(value).tolist()
    return value.tolist()


def is_media_file(path) -> bool:
    return bool(path) and str(path).lower().endswith(MEDIA_SUFFIXES)


def build_media_request(model_name, path, class_names=None, version=None, wav=False,
                        image_format="png", spec=None):
    """A PredictRequest of a media signature for one local video file: its sampled frames
    (PNG, or JPEG with image_format="jpeg") and its audio (float samples, or WAV bytes with
    `wav`), cut exactly as `avca extract` cuts it (avca_tf.media.serving.media_request;
    needs avca-tf and PyAV). classify_open_media with `class_names`."""
    from avca_tf.media.preprocess import MediaSpec
    from avca_tf.media.serving import media_request
    if wav and class_names:
        raise ValueError("classify_open_media takes float samples: leave out --wav")
    signature = ("classify_open_media" if class_names else
                 "serving_media_wav" if wav else "serving_media")
    inputs = media_request(path, spec or MediaSpec(), image_format, "wav" if wav else "float")
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    if class_names:
        request.inputs["class_names"].CopyFrom(
            tf.make_tensor_proto(np.asarray([str(n) for n in class_names], dtype=object)))
    return request


def request_to_rest(request):
    """(URL path, JSON body) of the REST call equivalent to `request`."""
    spec = request.model_spec
    path = f"/v1/models/{spec.name}"
    if spec.HasField("version"):
        path += f"/versions/{spec.version.value}"
    body = {"signature_name": spec.signature_name,
            "inputs": {k: _to_json(tf.make_ndarray(v)) for k, v in request.inputs.items()}}
    return path + ":predict", body


def readable_request(request):
    """The request with every tensor in the proto's repeated value fields (float_val,
    int64_val, string_val) instead of packed bytes: the same request, readable as text."""
    from tensorflow.core.framework import tensor_pb2
    out = predict_pb2.PredictRequest()
    out.model_spec.CopyFrom(request.model_spec)
    for name in sorted(request.inputs):
        value = tf.make_ndarray(request.inputs[name])
        tensor = tensor_pb2.TensorProto(dtype=request.inputs[name].dtype,
                                        tensor_shape=request.inputs[name].tensor_shape)
        field = {"f4": "float_val", "f8": "double_val", "i8": "int64_val", "i4": "int_val",
                 "i2": "int_val", "i1": "int_val", "u1": "int_val", "b1": "bool_val",
                 "O": "string_val", "S": "string_val"}.get(
                     value.dtype.str[1:] if value.dtype.kind != "S" else "S")
        if field is None:  # any other dtype: as it was
            out.inputs[name].CopyFrom(request.inputs[name])
            continue
        getattr(tensor, field).extend(value.ravel().tolist())
        out.inputs[name].CopyFrom(tensor)
    return out


def _failure(e) -> str:
    """One line for a failed call: gRPC's status code and details (no debug string), or
    urllib's reason."""
    code, details = getattr(e, "code", None), getattr(e, "details", None)
    if callable(code) and callable(details):
        return f"{code().name}: {details()}"
    if getattr(e, "reason", None) is not None:  # urllib: refused, timed out, HTTP status
        return f"{getattr(e, 'code', '') or ''} {e.reason}".strip()
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def predict_grpc(target, request, timeout=10.0):
    """Sends `request` to a model server's gRPC port; returns {output: ndarray}."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=timeout)
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def predict_rest(base_url, request, timeout=10.0):
    """Sends `request` as JSON to a model server's REST port; returns its `outputs`."""
    path, body = request_to_rest(request)
    req = urllib.request.Request(base_url.rstrip("/") + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())["outputs"]


def _load_sequences(path, batch, dim, rng):
    """Per-video sequences from an .npz (one array per video, in np.savez order) or a
    padded .npy; random ones of 1..12 steps without a path."""
    if not path:
        return [rng.normal(size=(int(t), dim)) for t in rng.integers(1, 13, size=batch)]
    if path.endswith(".npz"):
        with np.load(path) as z:
            keys = sorted(z.files, key=lambda k: (len(k), k))  # arr_0, arr_1, ..., arr_10
            if not keys:
                raise ValueError(f"{path}: no arrays; expected one [steps, d] array per video")
            return [z[k] for k in keys]
    return np.load(path)


def main(argv=None):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--transport", choices=("grpc", "rest"), default="grpc",
                   help="gRPC (port --grpc-port) or REST (port --rest-port)")
    p.add_argument("--host", default="localhost", help="model server host")
    p.add_argument("--grpc-port", type=int, default=8500, help="TF Serving's gRPC port")
    p.add_argument("--rest-port", type=int, default=8501, help="TF Serving's REST port")
    p.add_argument("--model-name", default="avca", help="served model name")
    p.add_argument("--version", type=int, default=None,
                   help="model version (default: the server's latest)")
    p.add_argument("--signature", choices=SIGNATURES, default="serving_default",
                   help="signature to call")
    p.add_argument("--audio", help=".npy float32 [B, d_a]; with --sequences an .npz of one "
                                   "[T_i, d_a] array per video (np.savez order) or a padded "
                                   ".npy [B, T, d_a] (every step valid); default: random")
    p.add_argument("--video", help=".npy float32 [B, d_v] (--sequences: as --audio); or a "
                                   "video file (.mp4 .webm .avi .mkv .mov) for a media export; "
                                   "default: random")
    p.add_argument("--sequences", action="store_true",
                   help="a sequence model's export (TCaF): send padded sequences + lengths")
    p.add_argument("--audio-dim", type=int, default=512, help="width of random audio input")
    p.add_argument("--video-dim", type=int, default=512, help="width of random video input")
    p.add_argument("--batch", type=int, default=2, help="rows of random input")
    p.add_argument("--class-names", nargs="+", default=None, help="for classify_open")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the server")
    p.add_argument("--wav", action="store_true",
                   help="with --video FILE: send the audio as WAV bytes (serving_media_wav)")
    p.add_argument("--image-format", choices=("png", "jpeg"), default="png",
                   help="with --video FILE: how the sampled frames are encoded")
    p.add_argument("--print-request", action="store_true",
                   help="print the request (text proto with readable values for grpc, JSON "
                        "for rest) instead of sending it")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    request = None
    try:
        if is_media_file(args.video):  # a video file: a media signature of `avca export --media`
            request = build_media_request(args.model_name, args.video, args.class_names,
                                          args.version, args.wav, args.image_format)
            args.signature = request.model_spec.signature_name
        elif args.sequences:
            audio, video = (_load_sequences(path, args.batch, dim, rng) for path, dim in
                            ((args.audio, args.audio_dim), (args.video, args.video_dim)))
        else:
            audio = (np.load(args.audio) if args.audio
                     else rng.normal(size=(args.batch, args.audio_dim)))
            video = (np.load(args.video) if args.video
                     else rng.normal(size=(args.batch, args.video_dim)))
        request = request or build_request(args.model_name, args.signature, audio, video,
                                           args.class_names, args.version,
                                           sequences=args.sequences)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.print_request:
        print(readable_request(request) if args.transport == "grpc"
              else json.dumps(dict(zip(("path", "body"), request_to_rest(request)))))
        return 0
    target = (f"{args.host}:{args.grpc_port}" if args.transport == "grpc"
              else f"http://{args.host}:{args.rest_port}")
    try:
        if args.transport == "grpc":
            outputs = {k: v.tolist() for k, v in
                       predict_grpc(target, request, args.timeout).items()}
            outputs = json.loads(json.dumps(outputs, default=lambda b: b.decode("utf-8")))
        else:
            outputs = predict_rest(target, request, args.timeout)
    except Exception as e:  # grpc.RpcError, urllib.error.URLError/HTTPError, timeouts
        print(f"error: {args.transport} request to {target} (model {args.model_name!r}, "
              f"signature {args.signature}) failed: {_failure(e)}", file=sys.stderr)
        return 1
    print(json.dumps(outputs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
