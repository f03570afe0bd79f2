//! TaskTonic networking: a selector catalyst on `mio`, TCP connections and listeners as tonics,
//! and codecs that cut whole messages.

pub mod codec;
