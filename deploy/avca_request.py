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
"""
import argparse
import json
import sys
import urllib.request

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

SIGNATURES = ("serving_default", "embed", "classify_open")


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


def _to_json(value):
    if value.dtype == object:
        return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(value).tolist()
    return value.tolist()


def request_to_rest(request):
    """(URL path, JSON body) of the REST call equivalent to `request`."""
    spec = request.model_spec
    path = f"/v1/models/{spec.name}"
    if spec.HasField("version"):
        path += f"/versions/{spec.version.value}"
    body = {"signature_name": spec.signature_name,
            "inputs": {k: _to_json(tf.make_ndarray(v)) for k, v in request.inputs.items()}}
    return path + ":predict", body


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
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    p.add_argument("--transport", choices=("grpc", "rest"), default="grpc")
    p.add_argument("--host", default="localhost")
    p.add_argument("--grpc-port", type=int, default=8500)
    p.add_argument("--rest-port", type=int, default=8501)
    p.add_argument("--model-name", default="avca")
    p.add_argument("--version", type=int, default=None)
    p.add_argument("--signature", choices=SIGNATURES, default="serving_default")
    p.add_argument("--audio", help=".npy float32 [B, d_a]; with --sequences an .npz of one "
                                   "[T_i, d_a] array per video (np.savez order) or a padded "
                                   ".npy [B, T, d_a] (every step valid)")
    p.add_argument("--video", help=".npy float32 [B, d_v] (--sequences: as --audio)")
    p.add_argument("--sequences", action="store_true",
                   help="a sequence model's export (TCaF): send padded sequences + lengths")
    p.add_argument("--audio-dim", type=int, default=512)
    p.add_argument("--video-dim", type=int, default=512)
    p.add_argument("--batch", type=int, default=2, help="rows of random input")
    p.add_argument("--class-names", nargs="+", default=None, help="for classify_open")
    p.add_argument("--print-request", action="store_true",
                   help="print the request (text proto or JSON) instead of sending it")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    try:
        if args.sequences:
            audio, video = (_load_sequences(path, args.batch, dim, rng) for path, dim in
                            ((args.audio, args.audio_dim), (args.video, args.video_dim)))
        else:
            audio = (np.load(args.audio) if args.audio
                     else rng.normal(size=(args.batch, args.audio_dim)))
            video = (np.load(args.video) if args.video
                     else rng.normal(size=(args.batch, args.video_dim)))
        request = build_request(args.model_name, args.signature, audio, video,
                                args.class_names, args.version, sequences=args.sequences)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.print_request:
        print(request if args.transport == "grpc"
              else json.dumps(dict(zip(("path", "body"), request_to_rest(request)))))
        return 0
    try:
        if args.transport == "grpc":
            outputs = {k: v.tolist() for k, v in
                       predict_grpc(f"{args.host}:{args.grpc_port}", request).items()}
            outputs = json.loads(json.dumps(outputs, default=lambda b: b.decode("utf-8")))
        else:
            outputs = predict_rest(f"http://{args.host}:{args.rest_port}", request)
    except Exception as e:  # grpc.RpcError, urllib.error.URLError/HTTPError
        print(f"error: {args.transport} request to {args.host} failed: {e}", file=sys.stderr)
        return 1
    print(json.dumps(outputs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
