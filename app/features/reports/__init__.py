"""AI reports (RelatorIA): datasets in, validated LLM reports out, as durable jobs."""
