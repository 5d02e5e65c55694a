/** Reduce a snippet to one sentence (a real agent would call the model here). */
export async function summarize(text: string): Promise<string> {
  const sentence = text.split(/(?<=[.!?])\s+/)[0] ?? text;
  return sentence.length > 200 ? `${sentence.slice(0, 197)}...` : sentence;
}
