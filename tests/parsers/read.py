# Reads .env files the way python-dotenv does (dotenv_values, with its
# default interpolation) and prints a JSON list: {key: value} per file.
import json
import sys

from dotenv import dotenv_values

print(json.dumps([dotenv_values(path) for path in sys.argv[1:]]))
