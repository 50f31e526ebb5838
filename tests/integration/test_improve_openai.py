"""improve through an OpenAI-compatible /v1/chat/completions (SSE) against the fake."""
import unittest

from improve_common import API_KEY, ProviderTests


class OpenAIImprove(ProviderTests, unittest.TestCase):
    PROVIDER = "openai"
    KEY_NAME = "OPENAI_API_KEY"

    def check_request(self, req):
        self.assertEqual(req["path"], "/v1/chat/completions")
        self.assertEqual(req["headers"]["authorization"], "Bearer " + API_KEY)
        b = req["body"]
        self.assertEqual(b["model"], "gpt-4o-mini")
        rf = b["response_format"]
        self.assertEqual(rf["type"], "json_schema")
        self.assertIs(rf["json_schema"]["strict"], True)
        self.assertIs(rf["json_schema"]["schema"]["additionalProperties"], False)
        self.assertEqual([m["role"] for m in b["messages"]], ["system", "user"])


if __name__ == "__main__":
    unittest.main()
