"""Triton's asyncio HTTP client (tritonclient.http.aio, aiohttp) driving the runtime; see common.py.

aiohttp labels the body application/octet-stream, also when it is plain v2 JSON (then without
Inference-Header-Content-Length).
"""
import asyncio

import tritonclient.http.aio as aioclient

import common


async def main():
    plan, steps, report_path = common.load()
    client = aioclient.InferenceServerClient(plan["http"])

    async def infer(step):
        case = plan["cases"][step["case"]]
        inputs = []
        for spec in case["inputs"]:
            tensor = aioclient.InferInput(spec["name"], spec["shape"], spec["datatype"])
            tensor.set_data_from_numpy(common.array(spec), binary_data=step["in"] == "binary")
            inputs.append(tensor)
        outputs = [aioclient.InferRequestedOutput(name, binary_data=step["out"] == "binary") for name in case["outputs"]]
        result = await client.infer(case["model"], inputs, outputs=outputs or None)
        return {name: common.encode(result.as_numpy(name)) for name in case["outputs"]}

    async def live(step):
        return await client.is_server_live()

    async def ready(step):
        return await client.is_server_ready()

    async def model_ready(step):
        return await client.is_model_ready(step["model"])

    async def server_metadata(step):
        return await client.get_server_metadata()

    async def model_metadata(step):
        return await client.get_model_metadata(step["model"])

    try:
        await common.run_async(steps, {
            "live": live, "ready": ready, "model_ready": model_ready, "server_metadata": server_metadata,
            "model_metadata": model_metadata, "infer": infer,
        }, report_path, ["tritonclient", "aiohttp"])
    finally:
        await client.close()


if __name__ == "__main__":
    asyncio.run(main())
