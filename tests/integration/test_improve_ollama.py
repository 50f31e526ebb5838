"""improve through Ollama's /api/chat (NDJSON streaming) against the fake."""
import unittest

from improve_common import ProviderTests


class OllamaImprove(ProviderTests, unittest.TestCase):
    PROVIDER = "ollama"
    KEY_NAME = None

    def check_request(self, req):
        self.assertEqual(req["path"], "/api/chat")
        b = req["body"]
        self.assertEqual(b["model"], "llama3.2:3b")
        self.assertEqual(b["format"]["type"], "object")
        self.assertIn("improved_prompt", b["format"]["required"])
        self.assertIs(b["think"], False)
        self.assertEqual([m["role"] for m in b["messages"]], ["system", "user"])

    def check_model_not_found_message(self, message):
        self.assertIn("ollama pull llama3.2:3b", message)

    def check_refused_message(self, message):
        self.assertIn("Ollama is not running at http://127.0.0.1:", message)
        self.assertIn("ollama serve", message)


if __name__ == "__main__":
    unittest.main()
