/* The built-in WaveRNN voice as a plugin (vocoder_plugin.h); see wavernn_plugin.c. */
#ifndef VK_WAVERNN_PLUGIN_H
#define VK_WAVERNN_PLUGIN_H

#include "plugin/vocoder_plugin.h"
#include "engine/voice.h"

const vocoder_plugin_descriptor *vk_wavernn_plugin_descriptor(void);
/* An instance around v, which the caller keeps alive until the descriptor's destroy
 * (which frees only the wrapper). NULL when out of memory. */
vocoder_plugin_instance *vk_wavernn_plugin_wrap(vk_voice *v);

#endif
