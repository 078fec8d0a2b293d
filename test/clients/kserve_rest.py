"""KServe's REST client (kserve.InferenceRESTClient, httpx) driving the runtime over OIP v2; see common.py.

It posts JSON as application/json, binary tensors as application/octet-stream with Inference-Header-Content-Length,
and puts the server's error text in its exception only when the answer's Content-Type is exactly application/json.
"""
import asyncio

from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput

import common


async def main():
    plan, steps, report_path = common.load()
    base_url = f"http://{plan['http']}"
    client = InferenceRESTClient(RESTConfig(protocol="v2"))

    async def infer(step):
        case = plan["cases"][step["case"]]
        inputs = []
        for spec in case["inputs"]:
            tensor = InferInput(spec["name"], spec["shape"], spec["datatype"])
            # KServe refuses FP16 in JSON ("Sending FP16 data via JSON is not supported"): such an input goes binary.
            tensor.set_data_from_numpy(common.array(spec), binary_data=step["in"] == "binary" or spec["datatype"] == "FP16")
            inputs.append(tensor)
        outputs = [RequestedOutput(name, parameters={"binary_data": step["out"] == "binary"}) for name in case["outputs"]]
        request = InferRequest(case["model"], inputs, request_outputs=outputs or None)
        response = await client.infer(base_url, request, model_name=case["model"])
        return {name: common.encode(response.get_output_by_name(name).as_numpy()) for name in case["outputs"]}

    async def live(step):
        return await client.is_server_live(base_url)

    async def ready(step):
        return await client.is_server_ready(base_url)

    async def model_ready(step):
        return await client.is_model_ready(base_url, step["model"])

    try:
        await common.run_async(steps, {"live": live, "ready": ready, "model_ready": model_ready, "infer": infer},
                               report_path, ["kserve", "httpx"])
    finally:
        await client.close()


if __name__ == "__main__":
    asyncio.run(main())
