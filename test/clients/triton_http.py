"""Triton's synchronous HTTP client (tritonclient.http, geventhttpclient) driving the runtime; see common.py.

With no binary tensor it posts v2 JSON with no Content-Type at all; with one, it adds Inference-Header-Content-Length
and still no Content-Type.
"""
import tritonclient.http as httpclient

import common


def main():
    plan, steps, report_path = common.load()
    client = httpclient.InferenceServerClient(plan["http"])

    def infer(step):
        case = plan["cases"][step["case"]]
        inputs = []
        for spec in case["inputs"]:
            tensor = httpclient.InferInput(spec["name"], spec["shape"], spec["datatype"])
            tensor.set_data_from_numpy(common.array(spec), binary_data=step["in"] == "binary")
            inputs.append(tensor)
        outputs = [httpclient.InferRequestedOutput(name, binary_data=step["out"] == "binary") for name in case["outputs"]]
        result = client.infer(case["model"], inputs, outputs=outputs or None)
        return {name: common.encode(result.as_numpy(name)) for name in case["outputs"]}

    common.run(steps, {
        "live": lambda step: client.is_server_live(),
        "ready": lambda step: client.is_server_ready(),
        "model_ready": lambda step: client.is_model_ready(step["model"]),
        "server_metadata": lambda step: client.get_server_metadata(),
        "model_metadata": lambda step: client.get_model_metadata(step["model"]),
        "infer": infer,
    }, report_path, ["tritonclient", "geventhttpclient"])
    client.close()


if __name__ == "__main__":
    main()
