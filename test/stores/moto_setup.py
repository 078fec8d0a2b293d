"""Prepares a moto server for test/runtime/fetch-stores.test.ts with boto3, the reference client, before the test
turns moto's auth on: the buckets and objects, an IAM user allowed to read them, one allowed nothing, and a role
for web identity (IRSA) allowed to read them and one allowed nothing.

Usage: moto_setup.py ENDPOINT < {"objects": {"bucket/key": "<base64>"}}
Prints {"reader": [id, secret], "nobody": [id, secret], "readerRole": arn, "nobodyRole": arn}.
"""
import base64
import json
import sys

import boto3

endpoint = sys.argv[1]
spec = json.load(sys.stdin)
# Any keys do before auth is on; moto counts these calls as the free ones.
options = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
s3 = boto3.client("s3", **options)
iam = boto3.client("iam", **options)

buckets = set()
for path, body in spec["objects"].items():
    bucket, key = path.split("/", 1)
    if bucket not in buckets:
        s3.create_bucket(Bucket=bucket)
        buckets.add(bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=base64.b64decode(body))

# On every bucket, so that a bucket that does not exist answers NoSuchBucket rather than AccessDenied.
read = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::*"}],
})
trust = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/TEST"},
        "Action": "sts:AssumeRoleWithWebIdentity",
    }],
})

result = {}
for user, policy in (("reader", read), ("nobody", None)):
    iam.create_user(UserName=user)
    if policy:
        iam.put_user_policy(UserName=user, PolicyName="read-models", PolicyDocument=policy)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    result[user] = [key["AccessKeyId"], key["SecretAccessKey"]]
for role, policy in (("readerRole", read), ("nobodyRole", None)):
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    if policy:
        iam.put_role_policy(RoleName=role, PolicyName="read-models", PolicyDocument=policy)
    result[role] = arn
print(json.dumps(result))
