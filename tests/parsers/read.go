// Reads .env files the way gh does (joho/godotenv's Read, with its
// variable expansion) and prints a JSON list: {key: value} per file, null
// for a file it refuses.
package main

import (
	"encoding/json"
	"os"

	"github.com/joho/godotenv"
)

func main() {
	out := []map[string]string{}
	for _, path := range os.Args[1:] {
		values, err := godotenv.Read(path)
		if err != nil {
			values = nil
		}
		out = append(out, values)
	}
	text, _ := json.Marshal(out)
	os.Stdout.Write(text)
}
