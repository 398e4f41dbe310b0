/**
 * The LLM stand-in's script for bots/voice-assistant.ts's tests (the stand-in is not our code; this
 * is what the "model" answers): the opening-hours tool for hours, the hand-over tool for a person,
 * the tool's result said back, else an echo.
 */
import type { StandInOptions } from '../../src/testing/voice-standins.js';

export const assistantLlmReply: NonNullable<StandInOptions['reply']> = (messages, tools) => {
  const last = messages.at(-1)!;
  if (last.role === 'tool') return `Here you go: ${last.content}`;
  if (tools.length > 0 && /hours/.test(last.content)) return { toolCall: { name: 'opening_hours', arguments: '{"day":"monday"}' } };
  if (tools.length > 0 && /person/.test(last.content)) return { toolCall: { name: 'transfer_to_human', arguments: '{}' } };
  return `LLM heard: ${last.content}`;
};
