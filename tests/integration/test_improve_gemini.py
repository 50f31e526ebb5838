"""improve through Gemini's generateContent / streamGenerateContent?alt=sse against the fake."""
import unittest

from improve_common import API_KEY, ProviderTests


class GeminiImprove(ProviderTests, unittest.TestCase):
    PROVIDER = "gemini"
    KEY_NAME = "GEMINI_API_KEY"

    def check_request(self, req):
        self.assertEqual(req["route_path"], "/v1beta/models/gemini-2.0-flash:generateContent")
        self.assertEqual(req["headers"]["x-goog-api-key"], API_KEY)
        self.assertNotIn("key=", req["path"])  # the key never goes in the URL
        b = req["body"]
        gc = b["generationConfig"]
        self.assertEqual(gc["responseMimeType"], "application/json")
        self.assertEqual(gc["responseSchema"]["type"], "OBJECT")
        self.assertTrue(b["systemInstruction"]["parts"][0]["text"])

    def test_stream_uses_alt_sse(self):
        self.c.call("improve", {"idea": "plan a team offsite", "stream": True})
        req = self.fake.requests()[-1]
        self.assertEqual(req["route_path"],
                         "/v1beta/models/gemini-2.0-flash:streamGenerateContent")
        self.assertIn("alt=sse", req["path"])


if __name__ == "__main__":
    unittest.main()
