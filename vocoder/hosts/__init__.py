"""Hosts: everything that drives voices.

- :mod:`vocoder.hosts.render`: a whole song to a WAV or FLAC file (``vocoder render``,
  :func:`vocoder.render_file`).
- :mod:`vocoder.hosts.voice`: :class:`vocoder.Voice` and :class:`vocoder.VoiceGroup`,
  a live voice for your own audio callback.
- :mod:`vocoder.hosts.live`: ``vocoder live``, MIDI keyboard to audio device.
- :mod:`vocoder.hosts.serve`: ``vocoder serve``, voices as plugins behind a control API and a web page;
  :mod:`vocoder.hosts.plugins` finds and checks plugins (``vocoder plugins``).
- :mod:`vocoder.hosts.batch`: many songs on Dask (``vocoder render SONGS... --out DIR``).
"""
