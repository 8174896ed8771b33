#!/usr/bin/env python3
"""purekafka's check for PATCH.md change 1: no array element purekafka decodes takes zero bytes.

The patched array decoders reserve no more than the bytes left and let the Vec grow as elements
arrive; that growth is bounded only if every element consumes at least one byte. This script
builds a scratch crate against this vendored copy that decodes every struct of the responses (and
consumer-protocol messages) purekafka uses from an empty buffer, at every version of the struct.
A struct that decodes from nothing at version v is harmless only if the field holding it does not
exist at v; the script reads each field's "Supported API versions" doc comment to check that.

Usage: python3 vendor/kafka-protocol/check_empty_elements.py   (from anywhere; needs cargo)
Exit status 0 when every element takes at least one byte, 1 otherwise.
"""

import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
MESSAGES = os.path.join(HERE, "src", "messages")
# The responses of the ApiRequest impls in src/protocol/api.rs (`XRequest => XResponse, X;`),
# read from that file so that a response purekafka starts decoding is checked at once, and the
# consumer protocol.
API_RS = os.path.join(HERE, "..", "..", "src", "protocol", "api.rs")


def snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def modules():
    with open(API_RS) as f:
        responses = re.findall(r"^\s*\w+Request => (\w+Response), \w+;", f.read(), re.M)
    if not responses:
        sys.exit(f"no `XRequest => XResponse, X;` lines found in {API_RS}")
    return [snake(r) for r in responses] + [
        "consumer_protocol_subscription", "consumer_protocol_assignment",
    ]


MODULES = modules()


def source(module):
    with open(os.path.join(MESSAGES, module + ".rs")) as f:
        return f.read()


def scratch_main():
    lines = [
        "use kafka_protocol::protocol::{Decodable, Message};",
        "fn check<T: Decodable + Message>(name: &str) {",
        "    for v in T::VERSIONS.min..=T::VERSIONS.max {",
        "        if T::decode(&mut bytes::Bytes::new(), v).is_ok() {",
        '            println!("{name} {v}");',
        "        }",
        "    }",
        "}",
        "fn main() {",
    ]
    for module in MODULES:
        for struct in re.findall(r"impl Decodable for (\w+)", source(module)):
            lines.append(f'    check::<kafka_protocol::messages::{module}::{struct}>("{module}::{struct}");')
    lines.append("}")
    return "\n".join(lines) + "\n"


def field_versions(module, struct):
    """(field, low, high) for every field whose type names `struct`."""
    pattern = (r"/// Supported API versions: ([^\n]+)\n(?:\s*///[^\n]*\n)*\s*pub (\w+): [^\n]*\b"
               + struct + r"\b")
    fields = []
    for versions, field in re.findall(pattern, source(module)):
        versions = versions.strip()
        if versions.endswith("+"):
            low, high = int(versions[:-1]), 1 << 15
        elif "-" in versions:
            low, high = map(int, versions.split("-"))
        else:
            low = high = int(versions)
        fields.append((field, low, high))
    return fields


def main():
    with tempfile.TemporaryDirectory() as scratch:
        os.makedirs(os.path.join(scratch, "src"))
        with open(os.path.join(scratch, "Cargo.toml"), "w") as f:
            f.write(
                '[package]\nname = "empty-elements"\nversion = "0.0.0"\nedition = "2021"\n'
                "[workspace]\n[dependencies]\nbytes = \"1\"\n"
                f'kafka-protocol = {{ package = "purekafka-kafka-protocol", path = "{HERE}", '
                'default-features = false, features = ["client"] }\n'
            )
        with open(os.path.join(scratch, "src", "main.rs"), "w") as f:
            f.write(scratch_main())
        run = subprocess.run(["cargo", "run", "--quiet"], cwd=scratch, capture_output=True,
                             text=True)
        if run.returncode != 0:
            sys.exit(f"scratch crate failed:\n{run.stderr}")
    bad = 0
    empty = run.stdout.split("\n")
    for line in filter(None, empty):
        name, version = line.rsplit(" ", 1)
        module, struct = name.split("::")
        version = int(version)
        fields = field_versions(module, struct)
        live = [f for f, low, high in fields if low <= version <= high]
        if live or not fields:
            bad += 1
            print(f"EMPTY ELEMENT: {name} decodes from 0 bytes at v{version}, "
                  f"held by {live or 'no field found'}")
    checked = sum(len(re.findall(r"impl Decodable for", source(m))) for m in MODULES)
    print(f"{checked} structs checked; {len([l for l in empty if l])} (struct, version) pairs "
          f"decode from 0 bytes, {bad} of them where their field exists")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
