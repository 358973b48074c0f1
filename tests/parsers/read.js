// Reads .env files the way wrangler does (npm dotenv's parse) and prints a
// JSON list: {key: value} per file.
const fs = require("fs");
const dotenv = require("dotenv");

const out = process.argv.slice(2).map((path) => dotenv.parse(fs.readFileSync(path)));
process.stdout.write(JSON.stringify(out));
