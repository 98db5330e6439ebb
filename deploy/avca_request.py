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
"""
import argparse
import json
import sys
import urllib.request

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

SIGNATURES = ("serving_default", "embed", "classify_open")


def build_request(model_name, signature, audio, video, class_names=None, version=None):
    """A PredictRequest for one of the export's signatures."""
    if signature not in SIGNATURES:
        raise ValueError(f"signature {signature!r}: expected one of {SIGNATURES}")
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = int(version)
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--transport", choices=("grpc", "rest"), default="grpc")
    p.add_argument("--host", default="localhost")
    p.add_argument("--grpc-port", type=int, default=8500)
    p.add_argument("--rest-port", type=int, default=8501)
    p.add_argument("--model-name", default="avca")
    p.add_argument("--version", type=int, default=None)
    p.add_argument("--signature", choices=SIGNATURES, default="serving_default")
    p.add_argument("--audio", help=".npy float32 [B, d_a]")
    p.add_argument("--video", help=".npy float32 [B, d_v]")
    p.add_argument("--audio-dim", type=int, default=512)
    p.add_argument("--video-dim", type=int, default=512)
    p.add_argument("--batch", type=int, default=2, help="rows of random input")
    p.add_argument("--class-names", nargs="+", default=None, help="for classify_open")
    p.add_argument("--print-request", action="store_true",
                   help="print the request (text proto or JSON) instead of sending it")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    audio = np.load(args.audio) if args.audio else rng.normal(size=(args.batch, args.audio_dim))
    video = np.load(args.video) if args.video else rng.normal(size=(args.batch, args.video_dim))
    request = build_request(args.model_name, args.signature, audio, video,
                            args.class_names, args.version)
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
