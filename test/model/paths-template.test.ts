// XDG cache/config folders, and where chat templates are found (tokenizer_config.json string or
// named list, chat_template.jinja, chat_template.json) and how they render.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CtxError } from '../../src/errors.js';
import { cachedModelDir, ctxCacheDir, ctxConfigDir, modelsCacheDir } from '../../src/model/paths.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { writeTinyTokenizer } from '../../scripts/make-tiny-tokenizer.js';

const root = mkdtempSync(join(tmpdir(), 'ctx-paths-test-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('paths', () => {
  it('cache: CTX_CACHE_DIR, else $XDG_CACHE_HOME/ctx, else ~/.cache/ctx', () => {
    assert.equal(ctxCacheDir({ CTX_CACHE_DIR: '/x/cache', XDG_CACHE_HOME: '/xdg' }), '/x/cache');
    assert.equal(ctxCacheDir({ XDG_CACHE_HOME: '/xdg' }), '/xdg/ctx');
    assert.equal(ctxCacheDir({}), join(homedir(), '.cache', 'ctx'));
    assert.equal(ctxCacheDir({ XDG_CACHE_HOME: 'relative/ignored' }), join(homedir(), '.cache', 'ctx'), 'XDG says relative paths are ignored');
    assert.equal(modelsCacheDir({ CTX_CACHE_DIR: '/c' }), '/c/models');
    assert.equal(cachedModelDir('qwen2.5-0.5b-instruct', { CTX_CACHE_DIR: '/c' }), '/c/models/qwen2.5-0.5b-instruct');
  });

  it('config: CTX_CONFIG_DIR, else $XDG_CONFIG_HOME/ctx, else ~/.config/ctx', () => {
    assert.equal(ctxConfigDir({ CTX_CONFIG_DIR: '/x/conf' }), '/x/conf');
    assert.equal(ctxConfigDir({ XDG_CONFIG_HOME: '/xdg' }), '/xdg/ctx');
    assert.equal(ctxConfigDir({}), join(homedir(), '.config', 'ctx'));
  });
});

describe('chat template sources', () => {
  const user = [{ role: 'user' as const, content: 'hi' }];
  let n = 0;
  const folder = () => {
    const dir = join(root, `t${n++}`);
    writeTinyTokenizer(dir);
    return dir;
  };
  const setConfig = (dir: string, change: (c: Record<string, unknown>) => void) => {
    const path = join(dir, 'tokenizer_config.json');
    const config = JSON.parse(readFileSync(path, 'utf8'));
    change(config);
    writeFileSync(path, JSON.stringify(config));
  };

  it('uses the "default" template of a named list', async () => {
    const dir = folder();
    setConfig(dir, (c) => {
      c.chat_template = [
        { name: 'tool_use', template: 'TOOLS' },
        { name: 'default', template: '{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}' },
      ];
    });
    assert.equal((await loadTokenizer(dir)).applyChatTemplate(user, { addGenerationPrompt: false }), '[user:hi]');
  });

  it('prefers chat_template.jinja, and reads chat_template.json when the config has none', async () => {
    const dir = folder();
    writeFileSync(join(dir, 'chat_template.jinja'), 'J{{ messages[0].content }}');
    assert.equal((await loadTokenizer(dir)).applyChatTemplate(user, { addGenerationPrompt: false }), 'Jhi');

    const other = folder();
    setConfig(other, (c) => delete c.chat_template);
    writeFileSync(join(other, 'chat_template.json'), JSON.stringify({ chat_template: 'K{{ eos_token }}' }));
    assert.equal((await loadTokenizer(other)).applyChatTemplate(user, { addGenerationPrompt: false }), 'K<|im_end|>');
  });

  it('passes bos_token, eos_token and add_generation_prompt, and AddedToken-object specials', async () => {
    const dir = folder();
    setConfig(dir, (c) => {
      c.bos_token = { __type: 'AddedToken', content: '<s>', lstrip: false };
      c.chat_template = '{{ bos_token }}|{{ eos_token }}|{{ add_generation_prompt }}';
    });
    const tok = await loadTokenizer(dir);
    assert.equal(tok.bosId, 296);
    assert.equal(tok.applyChatTemplate(user, { addGenerationPrompt: true }), '<s>|<|im_end|>|true');
  });

  it("reports a template's own raise_exception as a one-line model error", async () => {
    const dir = folder();
    setConfig(dir, (c) => {
      c.chat_template = "{% if messages[0].role != 'system' %}{{ raise_exception('a system message must come first') }}{% endif %}";
    });
    const tok = await loadTokenizer(dir);
    assert.throws(
      () => tok.applyChatTemplate(user, { addGenerationPrompt: true }),
      (e: unknown) => e instanceof CtxError && e.kind === 'model' && /tokenizer_config\.json: chat template failed: a system message must come first/.test(e.message),
    );
  });
});
