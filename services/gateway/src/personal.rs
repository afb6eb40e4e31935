//! Opening petitioners' sealed personal data for an answer. The log, the archive and the read
//! store hold it only sealed (`zhzj_store::vault`); the gateway opens it here, for the answers
//! that show it (masked unless revealed, or unmasked to those allowed and recorded), and shows an
//! erased petitioner's fields as 已删除.

use serde_json::Value;
use zhzj_proto::events::{Petitioner, RecordedPetitioner, SealedPetitioner};

use crate::{ApiError, AppState};

/// What an erased petitioner's fields show.
pub const ERASED: &str = "已删除";

/// An erased petitioner as answers show them.
fn erased() -> Petitioner {
    Petitioner {
        name: ERASED.into(),
        id_number: Some(ERASED.into()),
        phone: Some(ERASED.into()),
        address: Some(ERASED.into()),
    }
}

async fn unseal(state: &AppState, sealed: &SealedPetitioner) -> Result<Petitioner, ApiError> {
    let Some(vault) = state.vault() else {
        return Err(ApiError::internal(
            "a sealed petitioner and no key store configured (--master-key-file)",
        ));
    };
    match vault.unseal(sealed).await {
        Ok(Some(petitioner)) => Ok(petitioner),
        Ok(None) => Ok(erased()),
        Err(zhzj_store::VaultError::Unavailable(e)) => Err(ApiError::Unavailable(format!(
            "个人信息密钥库暂不可用，请稍后重试 ({e})"
        ))),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// A petitioner as recorded, opened.
pub async fn open(state: &AppState, recorded: &RecordedPetitioner) -> Result<Petitioner, ApiError> {
    match recorded {
        RecordedPetitioner::Plain(p) => Ok(p.clone()),
        RecordedPetitioner::Sealed(sealed) => unseal(state, sealed).await,
    }
}

/// Every petitioner of a `CaseRegistered` event's data, opened in place.
pub async fn open_in_event(state: &AppState, data: &mut Value) -> Result<(), ApiError> {
    let Some(petitioners) = data.get_mut("petitioners").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for petitioner in petitioners {
        let Ok(recorded) = serde_json::from_value::<RecordedPetitioner>(petitioner.clone()) else {
            continue;
        };
        if let RecordedPetitioner::Sealed(sealed) = recorded {
            *petitioner =
                serde_json::to_value(unseal(state, &sealed).await?).map_err(ApiError::internal)?;
        }
    }
    Ok(())
}
