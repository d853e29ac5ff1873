/*
 * family: the provider families the adapter knows, their names (metrics labels,
 * messages) and the catalogue provider kinds (sql/003) that belong to each. A family is
 * the index into the provider table (provider.h). Pure.
 */
#ifndef JR_AD_FAMILY_H
#define JR_AD_FAMILY_H

/* A family: the index into the table (route.family, metrics labels). */
enum xl_provider {
	XL_OPENAI = 0, /* OpenAI and every OpenAI-compatible server (vLLM, Ollama, ...) */
	XL_AZURE,
	XL_ANTHROPIC,
	XL_GEMINI,
	XL_BEDROCK,
	XL_COHERE,
	XL_OLLAMA,     /* Ollama's native API (/api/chat, /api/embed); kind "ollama" + api-version "native" */
	XL_VERTEX_GEMINI,    /* Gemini on Google Cloud Vertex AI */
	XL_VERTEX_ANTHROPIC, /* Anthropic's models on Vertex AI */
	XL_HUNYUAN,    /* Tencent Hunyuan's native API; kind "hunyuan" + api-version "native" */
	XL_DASHSCOPE,  /* Alibaba DashScope's native API; kind "dashscope" + api-version "native" */
	XL_TGI,        /* Hugging Face TGI's native API; kind "huggingface" + api-version "native[-<template>]" */
	XL__COUNT
};

/* The family of a catalogue provider kind with its endpoint's api-version; -1 when
 * unknown. */
int fam_of_kind(const char *kind, const char *api_version);
const char *xl_provider_name(enum xl_provider p);

#endif
