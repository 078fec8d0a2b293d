"""Triton's gRPC client (tritonclient.grpc) driving the runtime; see common.py.

Its InferInput always sends raw_input_contents, and InferResult.as_numpy reads only raw_output_contents. The
"infer_contents" steps send typed `contents` instead (as KServe's client, grpcurl or a hand-written stub may), with
the stubs tritonclient ships, and read the answer with tritonclient's InferResult as a Triton user would.
"""
import grpc
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2, service_pb2_grpc

import common

# The typed field of InferTensorContents that carries each datatype (FP16 has none: it is raw only).
CONTENTS = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
    "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents",
    "UINT64": "uint64_contents", "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}


def main():
    plan, steps, report_path = common.load()
    client = grpcclient.InferenceServerClient(plan["grpc"])
    channel = grpc.insecure_channel(plan["grpc"])
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)

    def infer(step):
        case = plan["cases"][step["case"]]
        inputs = []
        for spec in case["inputs"]:
            tensor = grpcclient.InferInput(spec["name"], spec["shape"], spec["datatype"])
            tensor.set_data_from_numpy(common.array(spec))
            inputs.append(tensor)
        outputs = [grpcclient.InferRequestedOutput(name) for name in case["outputs"]]
        result = client.infer(case["model"], inputs, outputs=outputs or None)
        return {name: common.encode(result.as_numpy(name)) for name in case["outputs"]}

    def infer_contents(step):
        case = plan["cases"][step["case"]]
        request = service_pb2.ModelInferRequest(model_name=case["model"])
        for spec in case["inputs"]:
            tensor = request.inputs.add(name=spec["name"], datatype=spec["datatype"], shape=spec["shape"])
            getattr(tensor.contents, CONTENTS[spec["datatype"]]).extend(common.array(spec).ravel().tolist())
        for name in case["outputs"]:
            request.outputs.add(name=name)
        result = grpcclient.InferResult(stub.ModelInfer(request))
        return {name: common.encode(result.as_numpy(name)) for name in case["outputs"]}

    common.run(steps, {
        "live": lambda step: client.is_server_live(),
        "ready": lambda step: client.is_server_ready(),
        "model_ready": lambda step: client.is_model_ready(step["model"]),
        "server_metadata": lambda step: client.get_server_metadata(as_json=True),
        "model_metadata": lambda step: client.get_model_metadata(step["model"], as_json=True),
        "infer": infer,
        "infer_contents": infer_contents,
    }, report_path, ["tritonclient", "grpcio", "protobuf"])
    channel.close()
    client.close()


if __name__ == "__main__":
    main()
