"""improve through Anthropic's /v1/messages (forced tool, SSE events) against the fake."""
import unittest

from improve_common import API_KEY, ProviderTests


class AnthropicImprove(ProviderTests, unittest.TestCase):
    PROVIDER = "anthropic"
    KEY_NAME = "ANTHROPIC_API_KEY"

    def check_request(self, req):
        self.assertEqual(req["path"], "/v1/messages")
        self.assertEqual(req["headers"]["x-api-key"], API_KEY)
        self.assertTrue(req["headers"]["anthropic-version"])
        b = req["body"]
        self.assertEqual(b["model"], "claude-3-5-haiku-latest")
        self.assertGreater(b["max_tokens"], 0)
        self.assertTrue(b["system"])
        tool = b["tools"][0]
        self.assertEqual(b["tool_choice"], {"type": "tool", "name": tool["name"]})
        self.assertIn("improved_prompt", tool["input_schema"]["required"])

    def test_overloaded_529_is_retried(self):
        self.configure(fault="overloaded_once")
        self.assert_default_result(self.c.call("improve", {"idea": "write a haiku about rain"}))
        self.assertEqual(len(self.fake.requests()), 2)


if __name__ == "__main__":
    unittest.main()
