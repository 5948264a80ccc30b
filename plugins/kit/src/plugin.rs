use crate::bindings::exports::storehost::origin::plugin::{Guest, PluginInfo};
use crate::{Backend, Origin, StoreError};

impl<B: Backend> Guest for Origin<B> {
    fn describe() -> PluginInfo {
        B::info()
    }

    fn init(config: Vec<(String, String)>) -> Result<(), StoreError> {
        B::with(|b| b.init(&config))
    }
}
