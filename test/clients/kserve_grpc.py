"""KServe's gRPC client (kserve.InferenceGRPCClient, grpc.aio) driving the runtime; see common.py.

set_data_from_numpy(binary_data=False) sends typed `contents`, binary_data=True raw_input_contents; the answer is
read from whichever of the two the server filled.
"""
import asyncio

from kserve import InferenceGRPCClient, InferInput, InferRequest
from kserve.protocol.infer_type import RequestedOutput

import common


async def main():
    plan, steps, report_path = common.load()
    client = InferenceGRPCClient(plan["grpc"])

    async def infer(step):
        case = plan["cases"][step["case"]]
        inputs = []
        for spec in case["inputs"]:
            tensor = InferInput(spec["name"], spec["shape"], spec["datatype"])
            tensor.set_data_from_numpy(common.array(spec), binary_data=step["in"] == "raw")
            inputs.append(tensor)
        outputs = [RequestedOutput(name) for name in case["outputs"]]
        response = await client.infer(InferRequest(case["model"], inputs, request_outputs=outputs or None))
        return {name: common.encode(response.get_output_by_name(name).as_numpy()) for name in case["outputs"]}

    async def live(step):
        return await client.is_server_live()

    async def ready(step):
        return await client.is_server_ready()

    async def model_ready(step):
        return await client.is_model_ready(step["model"])

    try:
        await common.run_async(steps, {"live": live, "ready": ready, "model_ready": model_ready, "infer": infer},
                               report_path, ["kserve", "grpcio", "protobuf"])
    finally:
        await client.close()


if __name__ == "__main__":
    asyncio.run(main())
