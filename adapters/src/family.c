/* family: see family.h. */
#include "family.h"

#include <string.h>

/* Catalogue provider kinds (sql/003) and their family. */
static const struct {
	const char *kind;
	enum xl_provider family;
} kinds[] = {
	{ "openai", XL_OPENAI },     { "vllm", XL_OPENAI },        { "ollama", XL_OPENAI },
	{ "gpustack", XL_OPENAI },   { "xinference", XL_OPENAI },  { "localai", XL_OPENAI },
	{ "dashscope", XL_OPENAI },  { "hunyuan", XL_OPENAI },     { "huggingface", XL_OPENAI },
	{ "azure_openai", XL_AZURE }, { "anthropic", XL_ANTHROPIC }, { "gemini", XL_GEMINI },
	{ "bedrock", XL_BEDROCK },   { "cohere", XL_COHERE },
	{ "vertex_gemini", XL_VERTEX_GEMINI }, { "vertex_anthropic", XL_VERTEX_ANTHROPIC },
};

int fam_of_kind(const char *kind, const char *api_version)
{
	for (size_t i = 0; kind && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strcmp(kind, kinds[i].kind) != 0)
			continue;
		/* Ollama serves OpenAI's API under /v1 and its own under /api; Hunyuan,
		 * DashScope and TGI an OpenAI-compatible API and their native one. */
		if (strcmp(kind, "ollama") == 0 && api_version && strcmp(api_version, "native") == 0)
			return XL_OLLAMA;
		if (strcmp(kind, "hunyuan") == 0 && api_version && strcmp(api_version, "native") == 0)
			return XL_HUNYUAN;
		if (strcmp(kind, "dashscope") == 0 && api_version && strcmp(api_version, "native") == 0)
			return XL_DASHSCOPE;
		/* TGI: its /generate, with the chat template "native-<template>" names. */
		if (strcmp(kind, "huggingface") == 0 && api_version &&
		    (strcmp(api_version, "native") == 0 || strncmp(api_version, "native-", 7) == 0))
			return XL_TGI;
		return (int)kinds[i].family;
	}
	return -1;
}

const char *xl_provider_name(enum xl_provider p)
{
	static const char *const names[XL__COUNT] = {
		[XL_OPENAI] = "openai", [XL_AZURE] = "azure_openai", [XL_ANTHROPIC] = "anthropic",
		[XL_GEMINI] = "gemini", [XL_BEDROCK] = "bedrock",    [XL_COHERE] = "cohere",
		[XL_OLLAMA] = "ollama", [XL_VERTEX_GEMINI] = "vertex_gemini",
		[XL_VERTEX_ANTHROPIC] = "vertex_anthropic", [XL_HUNYUAN] = "hunyuan",
		[XL_DASHSCOPE] = "dashscope", [XL_TGI] = "tgi",
	};

	return (unsigned)p < XL__COUNT ? names[p] : "unknown";
}
