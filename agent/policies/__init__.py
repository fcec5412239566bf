"""Policy backends: OpenAI-compatible, Hugging Face local, the project model, replay, scripted experts."""
